"""The API's request and response shapes (marshmallow), from which the OpenAPI description is generated.

Inputs are checked here for type and range only (so no value can reach the database it cannot store); what a value
means is the rules' business, and their refusals come back as 422 with the rule's own message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import fields, validate

from ..custody.operations import ERASURE_METHODS
from ..labels.layouts import DEFAULT_LAYOUT as LAYOUT_DEFAULT
from ..labels.layouts import LAYOUTS
from ..models import DataClass, Erasure, FlagStatus, Kind, Role

# Text with no control characters (a NUL cannot be stored in PostgreSQL); newlines and tabs are kept.
NO_CONTROL = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Must not contain control characters.")
# What the database and the time zone arithmetic can hold: a due time or a filter outside it is refused as a value.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_ID = 2**31 - 1
PER_PAGE = 100


def _text(limit: int, **kw) -> fields.String:
    return fields.String(validate=[validate.Length(max=limit), NO_CONTROL], **kw)


def _moment(**kw) -> fields.AwareDateTime:
    """A moment with its offset (a time without one is taken as UTC), within the years the system can use."""
    return fields.AwareDateTime(default_timezone=UTC, validate=validate.Range(min=EARLIEST, max=LATEST), **kw)


def _choice(values, **kw) -> fields.String:
    return fields.String(validate=validate.OneOf([getattr(v, "value", v) for v in values]), **kw)


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# --- errors --------------------------------------------------------------------------------------------------------


class ProblemSchema(ma.Schema):
    type = fields.String(required=True, metadata={"description": "A URI reference naming the kind of problem"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True, metadata={"description": "What went wrong, in the reader's language"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Messages per field of the request"})
    holder = fields.String(metadata={"description": "409 already out: who holds the item"})
    since = fields.String(metadata={"description": "409 already out: since when (ISO 8601)"})


# --- queries -------------------------------------------------------------------------------------------------------


class PageQuery(Strict):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_ID))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PER_PAGE))


class ItemQuery(PageQuery):
    q = _text(100, load_default="", metadata={"description": "Part of the tag, name, serial or department"})
    kind = _choice(Kind)
    data_class = _choice(DataClass)
    status = fields.String(load_default="", validate=validate.OneOf(["", "in", "out", "retired", "all"]),
                           metadata={"description": "in, out, retired or all (default: in service)"})


class CheckoutQuery(PageQuery):
    overdue = fields.Boolean(load_default=False)


class FlagQuery(PageQuery):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "all", *(s.value for s in FlagStatus)]),
                           metadata={"description": "open (open or acknowledged, the default), all, or one status"})


class EventQuery(PageQuery):
    item = _text(64, metadata={"description": "Only the events of the item with this asset tag"})
    since = _moment(metadata={"description": "From this moment on (inclusive)"})
    until = _moment(metadata={"description": "Before this moment"})


class LabelFileQuery(Strict):
    layout = fields.String(load_default=LAYOUT_DEFAULT, validate=validate.OneOf(sorted(LAYOUTS)),
                           metadata={"description": "A sheet or label printer layout (flask labels --list)"})
    show_name = fields.Boolean(load_default=False, metadata={"description": "Print the item's name on the label"})


class UserQuery(PageQuery):
    q = _text(100, load_default="", metadata={"description": "Part of the name or e-mail address"})


# --- requests ------------------------------------------------------------------------------------------------------


class ItemFields(Strict):
    asset_tag = _text(32, allow_none=True)
    name = _text(200)
    serial = _text(100, allow_none=True)
    department = _text(100, allow_none=True, metadata={"description": "A department's name"})
    data_class = _choice(DataClass)
    encrypted = fields.Boolean()
    people_count = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100_000_000))
    notes = _text(2000, allow_none=True)
    bag = _text(32, allow_none=True, metadata={"description": "The asset tag of the bag it is kept in"})
    encryption_method = _text(100, allow_none=True)
    storage_place = _text(100, allow_none=True, metadata={"description": "A storage place's name at the item's site"})
    site = _text(100, allow_none=True, metadata={"description": "A site's name (none: the main office)"})


class ItemCreate(ItemFields):
    kind = _choice(Kind, required=True)
    name = _text(200, required=True)


class ItemUpdate(ItemFields):
    kind = _choice(Kind)


class CheckoutRequestBody(Strict):
    due_at = _moment(metadata={"description": "Due back (default: today's day end)"})
    purpose = _text(200, load_default="")
    destination = _text(200, load_default="")
    reason = _text(200, load_default="", metadata={"description": "Why it stays out overnight or longer"})
    handling_ack = fields.Boolean(load_default=False, metadata={"description": "The handling rules were read"})
    holder = fields.Email(validate=validate.Length(max=254),
                          metadata={"description": "For whom (security desk and admins only; default: yourself)"})


class ReturnRequestBody(Strict):
    present = fields.List(_text(32), validate=validate.Length(max=500),
                          metadata={"description": "A bag's contents that came back, by asset tag (default: all)"})
    erasure = _choice([e for e in Erasure if e != Erasure.inspected])
    erasure_method = _choice(ERASURE_METHODS)


class HandoverRequestBody(Strict):
    to = fields.Email(required=True, validate=validate.Length(max=254), metadata={"description": "The new holder"})
    checkout_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID),
                                 metadata={"description": "The check-out you saw: refused if it changed hands"})
    direct = fields.Boolean(load_default=False,
                            metadata={"description": "The security desk moves it at once, without the receiver's "
                                                     "acceptance (recorded as such); others are refused"})


class AcceptOfferBody(Strict):
    handling_ack = fields.Boolean(load_default=False,
                                  metadata={"description": "The handling rules were read (where the class asks)"})


class AcknowledgeBody(Strict):
    note = _text(2000, required=True)
    new_due = _moment()


class ResolveBody(Strict):
    how = fields.String(required=True, validate=validate.OneOf(["returned", "confirmed_safe", "found"]),
                        metadata={"description": "found: a stock-take's missing item turned up (returned means the "
                                                 "same for such a flag)"})
    confirmed_by = _text(200, load_default="")
    note = _text(2000, load_default="")


# --- responses -----------------------------------------------------------------------------------------------------


class PersonSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()


class CheckoutSchema(ma.Schema):
    id = fields.Integer()
    asset_tag = fields.Function(lambda c: c.item.asset_tag, metadata={"type": "string"})
    holder = fields.Nested(PersonSchema)
    out_at = fields.AwareDateTime()
    due_at = fields.AwareDateTime()
    returned_at = fields.AwareDateTime(allow_none=True)
    purpose = fields.String()
    destination = fields.String()
    reason = fields.String(allow_none=True)
    bag_checkout_id = fields.Integer(attribute="parent_id", allow_none=True)


class ItemSchema(ma.Schema):
    asset_tag = fields.String()
    kind = fields.Enum(Kind, by_value=True)
    name = fields.String()
    serial = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    data_class = fields.Enum(DataClass, by_value=True)
    encrypted = fields.Boolean()
    encryption_method = fields.String(allow_none=True)
    people_count = fields.Integer(allow_none=True)
    notes = fields.String(allow_none=True)
    storage_place = fields.Function(lambda i: i.home_place.name if i.home_place is not None else None,
                                    allow_none=True, metadata={"type": "string", "description": "Where it is kept"})
    site = fields.Function(lambda i: i.site.name if i.site is not None else None, allow_none=True,
                           metadata={"type": "string", "description": "The site it belongs to (none: the main office)"})
    bag = fields.Function(lambda i: i.bag.asset_tag if i.bag is not None else None, allow_none=True,
                          metadata={"type": "string", "description": "The bag it is kept in"})
    status = fields.String(validate=validate.OneOf(["in", "out", "retired"]))
    checkout = fields.Nested(CheckoutSchema, allow_none=True,
                             metadata={"description": "Who holds it: for the desk, or when it is yours"})
    retired_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class FlagSchema(ma.Schema):
    id = fields.Integer()
    status = fields.Enum(FlagStatus, by_value=True)
    created_at = fields.AwareDateTime()
    note = fields.String(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    resolution = fields.String(allow_none=True)
    asset_tag = fields.Function(lambda f: f.item.asset_tag, metadata={"type": "string"})
    reason = fields.String(allow_none=True, metadata={
        "description": "null: an overdue check-out; stocktake_missing: a stock-take found the item missing"})
    stocktake_id = fields.Integer(allow_none=True)
    checkout = fields.Nested(CheckoutSchema, allow_none=True,
                             metadata={"description": "The overdue check-out; null for a stock-take's missing item"})


class EventSchema(ma.Schema):
    seq = fields.Integer()
    at = fields.AwareDateTime()
    action = fields.String()
    actor_id = fields.Integer(allow_none=True)
    item_id = fields.Integer(allow_none=True)
    checkout_id = fields.Integer(allow_none=True)
    subject_user_id = fields.Integer(allow_none=True)
    source = fields.String(allow_none=True)
    data = fields.Function(lambda e: json.loads(e.data or "{}"), metadata={"type": "object"})
    prev_hash = fields.String(metadata={"description": "The previous event's hash"})
    hash = fields.String(metadata={"description": "SHA-256 over prev_hash and this event's canonical content"})


class UserSchema(ma.Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.Enum(Role, by_value=True)
    active = fields.Boolean()
    language = fields.String(allow_none=True)
    department = fields.Function(lambda u: u.dept.name if u.dept is not None else None, allow_none=True,
                                 metadata={"type": "string"})
    created_at = fields.AwareDateTime()


class MeSchema(UserSchema):
    scopes = fields.List(fields.String())


class ReturnSchema(ma.Schema):
    checkout = fields.Nested(CheckoutSchema)
    returned = fields.List(fields.String(), metadata={"description": "A bag's contents that came back"})
    missing = fields.List(fields.String(), metadata={"description": "A bag's contents still out, as missing"})


class LabelSchema(ma.Schema):
    asset_tag = fields.String()
    token = fields.String(metadata={"description": "The label's token: /labels/{token}/... takes it"})
    url = fields.String(metadata={"description": "The address the label's QR code holds"})


class OfferSchema(ma.Schema):
    id = fields.Integer()
    status = fields.Function(lambda o: o.status.value, metadata={"type": "string"})
    asset_tag = fields.Function(lambda o: o.item.asset_tag, metadata={"type": "string"})
    giver = fields.Nested(PersonSchema, attribute="from_user")
    receiver = fields.Nested(PersonSchema, attribute="to_user")
    offered_at = fields.AwareDateTime()
    checkout_id = fields.Integer(metadata={"description": "The giver's check-out, which stays open until accepted"})


class PendingSchema(ma.Schema):
    request_id = fields.Integer()
    status = fields.String()
    asset_tag = fields.String()


def page_of(schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page of rows: the rows, this page's number, how many pages and rows in all."""
    return ma.Schema.from_dict({"rows": fields.List(fields.Nested(schema)), "page": fields.Integer(),
                                "pages": fields.Integer(), "total": fields.Integer()}, name=name)


ItemPage = page_of(ItemSchema, "ItemPage")
CheckoutPage = page_of(CheckoutSchema, "CheckoutPage")
FlagPage = page_of(FlagSchema, "FlagPage")
EventPage = page_of(EventSchema, "EventPage")
UserPage = page_of(UserSchema, "UserPage")
