"""Run consent: `minaintyg-consent` (host and port from CONSENT_HOST / CONSENT_PORT)."""

import uvicorn

from services.consent.app import create_app
from services.consent.settings import ConsentSettings


def main() -> None:
    """Serve consent with uvicorn."""
    settings = ConsentSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
