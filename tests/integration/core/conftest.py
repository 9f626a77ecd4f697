"""Fixtures for the controller-core integration tests: the Gadget CRD (tests/support/gadgets.py)."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from tests.support.gadgets import install_gadget_crd


@pytest.fixture
async def gadget_crd(api_client: client.ApiClient) -> None:
    await install_gadget_crd(api_client)
