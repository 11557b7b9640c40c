"""Run dispatch: `minaintyg-dispatch` (host and port from DISPATCH_HOST / DISPATCH_PORT)."""

from services.dispatch.app import create_app
from services.dispatch.settings import DispatchSettings
from services.kit.cli import parse_service_arguments
from services.kit.http import serve


def main() -> None:
    """Serve dispatch with uvicorn."""
    parse_service_arguments("minaintyg-dispatch", __doc__ or "", DispatchSettings)
    settings = DispatchSettings()
    serve(create_app(settings), settings.host, settings.port, tls=settings.tls_files())


if __name__ == "__main__":
    main()
