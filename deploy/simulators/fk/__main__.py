"""Run the Försäkringskassan simulator: `fk-sim` (host and port from FKSIM_HOST / FKSIM_PORT)."""

from deploy.simulators.fk.app import create_app
from deploy.simulators.fk.settings import FksimSettings
from services.kit.cli import parse_service_arguments
from services.kit.http import serve


def main() -> None:
    """Serve the simulator with uvicorn."""
    parse_service_arguments("fk-sim", __doc__ or "", FksimSettings)
    settings = FksimSettings()
    # A simulated timeout may hold a request for long; shutdown does not wait for it beyond this.
    serve(
        create_app(settings),
        settings.host,
        settings.port,
        graceful_seconds=5,
        tls=settings.tls_files(),
        mutual_tls=settings.mutual_tls(),
    )


if __name__ == "__main__":
    main()
