"""Fixtures shared by the integration tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.fakes.kube_api import FakeKubeAPI


@pytest.fixture
def api_client(kube: FakeKubeAPI) -> Iterator[client.ApiClient]:
    """The real kubernetes client pointed at the module's fake API server (its `kube` fixture)."""
    configuration = client.Configuration()
    configuration.host = kube.url
    with client.ApiClient(configuration) as api:
        yield api
