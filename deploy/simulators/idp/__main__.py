"""Run the identity-provider simulator: `idp-sim` (host and port from IDPSIM_HOST / IDPSIM_PORT), or list the test
persons one can log in as: `idp-sim persons`."""

import argparse
from datetime import UTC, datetime

from deploy.simulators.idp.app import create_app
from deploy.simulators.idp.persons import listed_persons
from deploy.simulators.idp.settings import IdpsimSettings
from services.kit.http import serve


def main() -> None:
    """Serve the simulator with uvicorn, or print the test persons."""
    parser = argparse.ArgumentParser(prog="idp-sim", description="e-legitimation (BankID) simulator, OpenID Connect")
    parser.add_argument("command", nargs="?", choices=["serve", "persons"], default="serve")
    if parser.parse_args().command == "persons":
        for person in listed_persons(datetime.now(UTC).date()):
            note = f"  ({person.note})" if person.note else ""
            print(f"{person.display_number}  {person.name}{note}")
        return
    settings = IdpsimSettings()
    serve(create_app(settings), settings.host, settings.port, graceful_seconds=5, tls=settings.tls_files())


if __name__ == "__main__":
    main()
