"""Run consent: `minaintyg-consent` (host and port from CONSENT_HOST / CONSENT_PORT)."""

from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from services.kit.http import serve


def main() -> None:
    """Serve consent with uvicorn."""
    settings = ConsentSettings()
    serve(create_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
