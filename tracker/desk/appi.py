"""Japan's APPI: when a lost item must be reported to the Personal Information Protection Commission, and by when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .. import clock
from ..custody.policy import Policy
from ..models import DataClass, Incident


@dataclass
class ReportDuty:
    """What Japan's APPI asks the business to report to the Personal Information Protection Commission."""

    sensitive: bool
    my_number: bool  # 特定個人情報: reported under the My Number Act's own rules and form
    over_1000: bool
    financial_harm: bool
    wrongful_purpose: bool
    exempt_by_encryption: bool
    required: bool
    known_on: date
    preliminary_by: date  # 'promptly': the PPC guidelines read this as about 3 to 5 days
    final_by: date  # 30 days, or 60 when the leak may be for a wrongful purpose
    # Notice to the individuals (本人通知) goes with every required report: promptly (no fixed number of days);
    # where it is impractical (no contact details), an alternative measure: a public announcement and a contact.
    notify_individuals: bool = False


def report_duty(incident: Incident, policy: Policy) -> ReportDuty:
    sensitive = incident.data_class == DataClass.sensitive
    # My Number is treated as the most sensitive class: a loss is always reported (under its own rules).
    my_number = incident.data_class == DataClass.my_number
    over_1000 = (incident.people_count or 0) > 1000
    triggers = sensitive or my_number or over_1000 or incident.financial_harm or incident.wrongful_purpose
    # Properly encrypted data is exempt, except where the leak may be for a wrongful purpose.
    exempt = incident.properly_encrypted and not incident.wrongful_purpose
    known_on = clock.local(incident.known_at, policy.timezone).date()
    return ReportDuty(sensitive=sensitive, my_number=my_number, over_1000=over_1000, financial_harm=incident.financial_harm,
                      wrongful_purpose=incident.wrongful_purpose, exempt_by_encryption=exempt and triggers,
                      required=triggers and not exempt, known_on=known_on,
                      preliminary_by=known_on + timedelta(days=5),
                      final_by=known_on + timedelta(days=60 if incident.wrongful_purpose else 30),
                      notify_individuals=triggers and not exempt)
