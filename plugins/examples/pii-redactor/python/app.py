"""The component's entry (componentize-py builds the module `app`): the
shared WIT glue (`plugins/sdk-python/gateway_glue.py`) around `pii_redactor`."""

import gateway_glue
import pii_redactor

WitWorld = gateway_glue.entry(pii_redactor)
