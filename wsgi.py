import gc

from server import create_app

app = create_app()
# Everything loaded so far (modules, schemas, the OpenAPI document, caches) lives as long as
# the process: move it out of the cyclic collector's reach, so the collections that requests
# trigger walk only what requests made (and forked workers share these pages untouched).
gc.freeze()
