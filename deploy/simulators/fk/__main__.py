"""Run the Försäkringskassan simulator: `fk-sim` (host and port from FKSIM_HOST / FKSIM_PORT)."""

import uvicorn

from deploy.simulators.fk.app import create_app
from deploy.simulators.fk.settings import FksimSettings


def main() -> None:
    """Serve the simulator with uvicorn."""
    settings = FksimSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        # A simulated timeout may hold a request for long; shutdown does not wait for it beyond this.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
