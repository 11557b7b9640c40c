"""Run consent: `minaintyg-consent` (host and port from CONSENT_HOST / CONSENT_PORT)."""

from services.consent.app import create_app
from services.consent.settings import ConsentSettings
from services.kit.cli import parse_service_arguments
from services.kit.http import serve
from services.kit.memory import tune_for_throughput


def main() -> None:
    """Serve consent with uvicorn."""
    parse_service_arguments("minaintyg-consent", __doc__ or "", ConsentSettings)
    settings = ConsentSettings()
    app = create_app(settings)
    tune_for_throughput()  # in the service process only: tests running the app in-process keep the defaults
    serve(app, settings.host, settings.port, tls=settings.tls_files())


if __name__ == "__main__":
    main()
