"""Domain errors raised by the rules; each carries a translatable message and its values."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a string for translation without translating it here (no Flask in the rules)."""
    return message


class DomainError(Exception):
    message = N_("The action could not be completed.")
    about: str | None = None  # the rule's argument that is wrong or missing, so a form can mark that field

    def __init__(self, message: str | None = None, *, about: str | None = None, **params):
        self.params = params
        if message is not None:
            self.message = message
        if about is not None:
            self.about = about
        super().__init__(self.message % params if params else self.message)


class AlreadyOut(DomainError):
    message = N_("Already out: %(holder)s since %(since)s.")

    def __init__(self, holder: str, since, asset_tag: str = "", holder_id: int | None = None):
        self.holder_name = holder
        self.holder_id = holder_id
        self.since = since
        self.asset_tag = asset_tag
        super().__init__(holder=holder, since=since, asset_tag=asset_tag)


class ChangedHands(DomainError):
    message = N_("%(asset_tag)s changed hands: %(holder)s holds it now (since %(since)s). Nothing was changed.")


class InBagOut(DomainError):
    message = N_("%(asset_tag)s is inside bag %(bag)s, which is out: return the bag first.")


class NotOut(DomainError):
    message = N_("%(asset_tag)s is not checked out.")


class Retired(DomainError):
    message = N_("%(asset_tag)s is retired and cannot be checked out.")


class Disposed(DomainError):
    message = N_("%(asset_tag)s was disposed of and cannot be checked out.")


class AwaitingInspection(DomainError):
    message = N_("%(asset_tag)s is waiting for the security desk's return inspection (erasure check) and cannot go "
                 "out until it is done.")


class ErasureRequired(DomainError):
    message = N_("Say whether the data on it was erased, nothing was written to it, or leave it for the security "
                 "desk's inspection.")
    about = "erasure"


class NotPermitted(DomainError):
    message = N_("You are not permitted to do that.")


class InvalidInput(DomainError):
    message = N_("The input is not valid.")


class ReasonRequired(DomainError):
    message = N_("Overnight or longer check-outs need a reason and a due time.")
    about = "reason"


class HandlingAckRequired(DomainError):
    message = N_("Please confirm that you have read the handling rules for personal data.")
    about = "handling_ack"


class Incomplete(DomainError):
    """Several pieces are missing at once (the reason and the rules tick): one refusal per piece in `errors`,
    so a form can mark each; said on its own, it reads as the first of them."""

    def __init__(self, errors: list[DomainError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, about=first.about, **first.params)


class ApprovalRequired(DomainError):
    message = N_("Overnight or longer check-outs must be approved by the security desk first.")


class RuleBroken(DomainError):
    """A take-out the item's take-out rule does not allow (the message names the rule)."""

    message = N_("The take-out rule for this item does not allow that.")


class WitnessRequired(DomainError):
    """The take-out rule asks for a second person (two-person rule) and none confirmed."""

    message = N_("A second person must witness this take-out: they enter their own e-mail address and password "
                 "here.")
    about = "witness"
