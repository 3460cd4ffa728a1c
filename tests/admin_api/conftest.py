"""pytest wiring of the contract test: one im-server for the whole session (started before the
first test, stopped after the last, which fails the run unless it exits 0), and a client of it."""

import pytest

from api_client import AdminClient
from im_server import ImServer


def pytest_addoption(parser):
    parser.addoption("--im-server", required=True, help="the im-server binary to test")


@pytest.fixture(scope="session")
def server(request):
    with ImServer(request.config.getoption("--im-server")) as running:
        yield running


@pytest.fixture(scope="session")
def api(server):
    return AdminClient(server.base_url, server.admin_key)
