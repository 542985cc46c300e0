from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devcloud_server import DevCloud


@pytest.fixture(scope="session")
def devcloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCloud]:
    server = DevCloud.start(Path(tmp_path_factory.mktemp("devcloud")))
    yield server
    server.stop()


@pytest.fixture
def devcloud(devcloud_server: DevCloud) -> DevCloud:
    """devcloud, reset to its seed for each test."""
    devcloud_server.reset()
    return devcloud_server


@pytest.fixture
def devcloud_settings(devcloud: DevCloud, settings: pytest.FixtureRequest) -> DevCloud:
    """The portal's settings pointed at the test session's devcloud."""
    settings.ENTRA_LOGIN_URL = devcloud.base_url  # type: ignore[attr-defined]
    settings.GRAPH_URL = devcloud.base_url  # type: ignore[attr-defined]
    settings.MICROSOFT_CA_BUNDLE = devcloud.ca_bundle  # type: ignore[attr-defined]
    return devcloud


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty cache (JWKS, locks), under the tests' own key prefix."""
    from django.core.cache import cache

    from identity.services import forget_local_tokens

    cache.clear()
    forget_local_tokens()  # the sealed ACS tokens each process keeps besides Redis
    yield
