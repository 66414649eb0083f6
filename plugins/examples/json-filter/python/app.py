"""The component's entry (componentize-py builds the module `app`): the
shared WIT glue (`plugins/sdk-python/gateway_glue.py`) around `json_filter`."""

import gateway_glue
import json_filter

WitWorld = gateway_glue.entry(json_filter)
