"""Run statistics: `minaintyg-stats` (host and port from STATS_HOST / STATS_PORT)."""

from services.kit.cli import parse_service_arguments
from services.kit.http import serve
from services.stats.app import create_app
from services.stats.handlers import ingest_gc
from services.stats.settings import StatsSettings


def main() -> None:
    """Serve statistics with uvicorn."""
    parse_service_arguments("minaintyg-stats", __doc__ or "", StatsSettings)
    settings = StatsSettings()
    app = create_app(settings)
    with ingest_gc():
        serve(app, settings.host, settings.port, tls=settings.tls_files())


if __name__ == "__main__":
    main()
