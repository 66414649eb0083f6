"""The component's entry (componentize-py builds the module `app`): the
shared WIT glue (`plugins/sdk-python/gateway_glue.py`) around `field_mapper`."""

import gateway_glue
import field_mapper

WitWorld = gateway_glue.entry(field_mapper)
