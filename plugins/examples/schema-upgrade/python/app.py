"""The component's entry (componentize-py builds the module `app`): the
shared WIT glue (`plugins/sdk-python/gateway_glue.py`) around `schema_upgrade`."""

import gateway_glue
import schema_upgrade

WitWorld = gateway_glue.entry(schema_upgrade)
