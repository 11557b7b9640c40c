"""Run the identity-provider simulator: `idp-sim` (host and port from IDPSIM_HOST / IDPSIM_PORT)."""

from deploy.simulators.idp.app import create_app
from deploy.simulators.idp.settings import IdpsimSettings
from services.kit.http import serve


def main() -> None:
    """Serve the simulator with uvicorn."""
    settings = IdpsimSettings()
    serve(create_app(settings), settings.host, settings.port, graceful_seconds=5)


if __name__ == "__main__":
    main()
