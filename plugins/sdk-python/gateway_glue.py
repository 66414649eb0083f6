"""The WIT glue of `gateway:plugin@0.1.0` around a plugin module's `handle`,
as the Rust SDK's glue does it: the WIT records become `gateway_sdk` types,
the plugin runs, and its verdict or error becomes the WIT one. Only a
component imports this module (the bindings exist only there); a plugin's
`app.py`, the module componentize-py builds, is

    import gateway_glue
    import my_plugin

    WitWorld = gateway_glue.entry(my_plugin)
"""

from types import ModuleType

from componentize_py_types import Err
import wit_world
from wit_world.imports import log, types

import gateway_sdk

_LEVELS = {
    "debug": log.Level.DEBUG,
    "info": log.Level.INFO,
    "warn": log.Level.WARN,
    "error": log.Level.ERROR,
}
_ERRORS = {
    "invalid-config": types.Error_InvalidConfig,
    "invalid-event": types.Error_InvalidEvent,
    "failed": types.Error_Failed,
}


def entry(plugin: ModuleType) -> type:
    """The class componentize-py looks for as `app.WitWorld`, running
    `plugin.handle`; `app.py` is `WitWorld = gateway_glue.entry(plugin)`."""
    gateway_sdk.set_log_sink(lambda level, message: log.write(_LEVELS[level], message))

    class WitWorld(wit_world.WitWorld):
        def handle(self, event: types.Event, target: types.Target) -> types.Verdict:
            return _handle(plugin, event, target)

    return WitWorld


def _handle(plugin: ModuleType, event: types.Event, target: types.Target) -> types.Verdict:
    try:
        # Data first, then config, as in the Rust SDK: a call with both
        # bad reports the data.
        verdict = plugin.handle(
            _event(gateway_sdk.Event, event, gateway_sdk.decode_data(event.data)),
            gateway_sdk.Target(
                endpoint_id=target.endpoint_id,
                schema_version=target.schema_version,
                config=gateway_sdk.decode_config(target.config),
            ),
        )
        if isinstance(verdict, gateway_sdk.Drop):
            return types.Verdict_Drop(verdict.reason)
        out = verdict.event
        return types.Verdict_Deliver(_event(types.Event, out, gateway_sdk.encode_data(out.data)))
    except gateway_sdk.PluginError as error:
        raise Err(_ERRORS[error.kind](error.message)) from None


def _event(make: type, event: object, data: object) -> object:
    """`make` (the WIT or the SDK event) of `event`'s fields, with `data`."""
    return make(
        id=event.id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        timestamp=event.timestamp,
        data=data,
        metadata=list(event.metadata),
    )
