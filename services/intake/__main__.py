"""Run intake: `minaintyg-intake` (host and port from INTAKE_HOST / INTAKE_PORT)."""

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kit.cli import parse_service_arguments
from services.kit.http import serve
from services.kit.memory import tune_for_throughput


def main() -> None:
    """Serve intake with uvicorn."""
    parse_service_arguments("minaintyg-intake", __doc__ or "", IntakeSettings)
    settings = IntakeSettings()
    app = create_app(settings)
    tune_for_throughput()  # in the service process only: tests running the app in-process keep the defaults
    serve(app, settings.host, settings.port, tls=settings.tls_files(), mutual_tls=settings.mutual_tls())


if __name__ == "__main__":
    main()
