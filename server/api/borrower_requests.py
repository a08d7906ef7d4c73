"""Borrower requests: do-not-visit, do-not-contact, preferred contact times, out-of-hours
consent; recorded, listed and withdrawn by dispatchers."""

from flask.views import MethodView

from schemas.borrower_requests import (
    BorrowerRequestCreateSchema,
    BorrowerRequestPageSchema,
    BorrowerRequestQueryArgsSchema,
    BorrowerRequestResultSchema,
    BorrowerRequestWithdrawSchema,
)
from schemas.common import ErrorSchema
from server.api.context import Blueprint, caller, get_db, requires, runtime
from server.domain.disclosure import DISPATCH_PLANNING
from server.services import borrower_requests

blp = Blueprint(
    "borrower_requests",
    __name__,
    url_prefix="/api/v1",
    description="What borrowers asked for: not to be visited or contacted, when, out of hours",
)


@blp.route("/borrowers/<int:borrower_id>/requests")
class BorrowerRequestViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(BorrowerRequestQueryArgsSchema, location="query")
    @blp.response(200, BorrowerRequestPageSchema, purpose=DISPATCH_PLANNING)
    def get(self, args, borrower_id):
        """The borrower's requests, oldest first"""
        return borrower_requests.list_requests(
            get_db(), caller(), borrower_id, args.get("kind"), args["active"]
        )

    @requires("dispatcher")
    @blp.arguments(BorrowerRequestCreateSchema)
    @blp.response(201, BorrowerRequestResultSchema, purpose=DISPATCH_PLANNING)
    def post(self, body, borrower_id):
        """Record a request; do-not-visit stops every visit to the borrower and purges the cards"""
        return borrower_requests.record_request(get_db(), runtime(), caller(), borrower_id, body)


@blp.route("/borrowers/<int:borrower_id>/requests/<int:request_id>/withdraw")
class BorrowerRequestWithdrawViews(MethodView):
    @requires("dispatcher")
    @blp.arguments(BorrowerRequestWithdrawSchema)
    @blp.response(200, BorrowerRequestResultSchema, purpose=DISPATCH_PLANNING)
    @blp.alt_response(409, schema=ErrorSchema, description="already withdrawn")
    def post(self, body, borrower_id, request_id):
        """Record the withdrawal; a withdrawn consent cancels the visits that relied on it"""
        return borrower_requests.withdraw_request(
            get_db(), runtime(), caller(), borrower_id, request_id, body
        )
