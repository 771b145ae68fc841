"""An Airflow connection read into an HttpEndpoint (gamesre.integrations.http_endpoint), as Airflow's HTTP
connections are read: host (a name, or a full URL with a path prefix), schema (http or https), port, login and
password (basic auth), and the extra's token, verify, ca_bundle, cert, key, headers and path_prefix.

The Prometheus and Alertmanager hooks use `endpoint_from_connection`; the triggers, in the triggerer's event loop,
`aendpoint_for` (the connection looked up asynchronously, its files read off the loop). docs/connections.md says
how to fill each field.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from gamesre.integrations.http_endpoint import HttpEndpoint, endpoint_from_fields

if TYPE_CHECKING:
    from airflow.sdk import Connection


def endpoint_from_connection(conn: Connection, system: str) -> HttpEndpoint:
    """The endpoint the connection describes; EndpointSettingsError (naming the connection and field) when its
    settings cannot work or could mean two things."""
    return endpoint_from_fields(system, conn.conn_id, host=conn.host, port=conn.port, schema=conn.schema,
                                login=conn.login, password=conn.password, extra=conn.extra)


async def aendpoint_for(conn_id: str, system: str) -> HttpEndpoint:
    """endpoint_from_connection for a connection id, from async code (the triggerer)."""
    conn = await BaseHook.aget_connection(conn_id)
    return await asyncio.to_thread(endpoint_from_connection, conn, system)
