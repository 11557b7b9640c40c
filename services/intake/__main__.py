"""Run intake: `minaintyg-intake` (host and port from INTAKE_HOST / INTAKE_PORT)."""

import uvicorn

from services.intake.app import create_app
from services.intake.settings import IntakeSettings


def main() -> None:
    """Serve intake with uvicorn."""
    settings = IntakeSettings()
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
