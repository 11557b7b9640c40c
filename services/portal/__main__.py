"""Run the portal: `minaintyg-portal` (host and port from PORTAL_HOST / PORTAL_PORT)."""

from services.kit.cli import parse_service_arguments
from services.kit.http import serve
from services.portal.app import create_app
from services.portal.settings import PortalSettings


def main() -> None:
    """Serve the portal with uvicorn."""
    parse_service_arguments("minaintyg-portal", __doc__ or "", PortalSettings)
    settings = PortalSettings()
    serve(
        create_app(settings), settings.host, settings.port, tls=settings.tls_files(), mutual_tls=settings.mutual_tls()
    )


if __name__ == "__main__":
    main()
