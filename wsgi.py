import gc

from server import create_app
from server.api import openapi_document

app = create_app()
# The OpenAPI document is written when first read (api.DoorstepApi): write it here, once,
# before gunicorn forks its workers, so no request pays for it and the workers share it.
openapi_document(app)
# Everything loaded so far (modules, schemas, the OpenAPI document, caches) lives as long as
# the process: move it out of the cyclic collector's reach, so the collections that requests
# trigger walk only what requests made (and forked workers share these pages untouched).
gc.freeze()
# A push or a pull builds tens of thousands of short-lived objects (records, outcomes, the
# answer) that reference counting frees when the request ends. With the default first
# threshold (700 allocations) the collector runs dozens of times inside every request and
# promotes those objects to older generations, whose collections then walk them again:
# 0.5-1.1 ms of collector time per batch of 100 pushed records and ~0.5 ms per pull. At
# 20,000 a request's objects are mostly freed before the collector ever sees them (collector
# time under 0.01 ms per batch), and a collection still runs well before cyclic garbage
# could matter to memory. docs/sync.md, "Performance: the fourth round".
gc.set_threshold(20_000, 10, 10)
