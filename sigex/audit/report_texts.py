"""The words of the article 15 report, in Dutch (the default: the reader is Dutch) and English.

The report is written for a citizen, not for an auditor: it says who received
what about them, when, why and on which law, and how to object. Purposes and
signals have a citizen's description here in both languages; a code without
one falls back to the policy's own description, then to the code itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")


@dataclass(frozen=True, slots=True)
class ReportTexts:
    title: str
    intro: tuple[str, ...]
    generated: str
    none_disclosed: str
    item: str
    when: str
    recipient: str
    sender: str
    signal: str
    purpose: str
    legal_basis: str
    agreement: str
    fields: str
    acknowledged: str
    log_record: str
    yes: str
    no: str
    count: str
    refusals: str
    integrity: str
    object_heading: str
    objection: tuple[str, ...]
    version: str
    time_zone_note: str
    purposes: dict[str, str]
    signals: dict[str, str]


DUTCH = ReportTexts(
    title="Overzicht van verstrekkingen van uw gegevens (AVG, artikel 15)",
    intro=(
        "U heeft gevraagd welke gegevens over u zijn gedeeld. Dit overzicht laat zien welke "
        "gegevens over u via de signaaluitwisseling (sigex) tussen overheidsorganisaties zijn "
        "verstrekt: wie ze kreeg, wanneer, waarom en op grond van welke wet.",
        "Uw burgerservicenummer staat niet in dit overzicht; u weet zelf om wie het gaat. "
        "Van elke verstrekking staan alleen de namen van de gegevens vermeld, niet de inhoud.",
    ),
    generated="Opgesteld op",
    none_disclosed="Er zijn via de signaaluitwisseling geen gegevens over u verstrekt.",
    item="Verstrekking",
    when="Datum en tijd",
    recipient="Ontvanger",
    sender="Afzender",
    signal="Soort melding",
    purpose="Doel",
    legal_basis="Wettelijke grondslag",
    agreement="Afspraak (verwerking)",
    fields="Verstrekte gegevens",
    acknowledged="Ontvangst bevestigd",
    log_record="Regel in het logboek",
    yes="ja",
    no="nee",
    count="Aantal verstrekkingen: {count}.",
    refusals=(
        "In {count} geval(len) is een verstrekking geweigerd, omdat de wet of de afspraak die "
        "niet toestond. Toen is niets over u verstuurd."
    ),
    integrity=(
        "Deze verstrekkingen staan in een beveiligd logboek van {size} regels. Niemand kan een "
        "regel ongemerkt wijzigen of verwijderen: elke regel kan worden gecontroleerd met het "
        "nummer dat erbij staat."
    ),
    object_heading="Bent u het er niet mee eens?",
    objection=(
        "U kunt de organisatie die uw gegevens ontving vragen ze in te zien, te verbeteren of "
        "te wissen, of bezwaar maken tegen het gebruik ervan (AVG, artikelen 15 tot en met 21). "
        "Neem daarvoor contact op met de functionaris voor gegevensbescherming van die "
        "organisatie; de contactgegevens staan op haar website.",
        "Heeft een organisatie op grond van deze gegevens een besluit over u genomen, dan kunt u "
        "tegen dat besluit bezwaar maken bij die organisatie. Hoe en binnen welke termijn staat "
        "in het besluit.",
        "Komt u er met de organisatie niet uit, dan kunt u een klacht indienen bij de Autoriteit "
        "Persoonsgegevens (www.autoriteitpersoonsgegevens.nl) of naar de rechter gaan.",
    ),
    version="versie",
    time_zone_note="Tijden in Nederlandse tijd.",
    purposes={
        "SUWI64_SZ": "bestrijden van onrechtmatig gebruik van sociale zekerheid en toeslagen",
        "SUWI64_FISC": "bestrijden van belasting- en premiefraude",
        "SUWI64_ARB": "bestrijden van het niet naleven van arbeidswetten",
        "LAA_SIGNAAL": "een signaal over de juistheid van uw adres, voor een adresonderzoek",
        "LAA_TERUGKOPPELING": "de uitkomst van een adresonderzoek",
        "BRP_TERUGMELDING": "een melding van twijfel over uw gegevens in de BRP",
        "BRP_VERBLIJFSADRES": "uw tijdelijke verblijfsadres (experiment)",
        "LA_BSN_FEEDBACK": "een terugmelding over een BSN in de loonaangifte dat niet klopt",
        "WTTA_TOEZICHT": "toezicht op de toelating van uitleners en inleners",
        "WTTA_REGISTER": "het openbare register van toegelaten uitleners",
    },
    signals={
        "laa.frequent-mover": "melding 'vaak verhuisd' (meer dan vier verhuizingen in een jaar)",
        "laa.investigation-outcome": "uitkomst van een adresonderzoek",
        "payroll.bsn-mismatch": "BSN in de loonaangifte komt niet overeen met de BRP",
        "waadi.admission-violation": "uitlenen van werknemers zonder toelating (Waadi)",
    },
)

ENGLISH = ReportTexts(
    title="Disclosures of your data (GDPR, article 15)",
    intro=(
        "You asked which data about you has been shared. This report shows which data about you "
        "was disclosed through the signal exchange (sigex) between government bodies: who "
        "received it, when, why and on which law.",
        "Your citizen service number (BSN) is not in this report; you know who it is about. "
        "Each disclosure lists the names of the data only, not their contents.",
    ),
    generated="Drawn up on",
    none_disclosed="No data about you was disclosed through the signal exchange.",
    item="Disclosure",
    when="Date and time",
    recipient="Recipient",
    sender="Sender",
    signal="Kind of signal",
    purpose="Purpose",
    legal_basis="Legal basis",
    agreement="Agreement (processing activity)",
    fields="Data disclosed",
    acknowledged="Receipt confirmed",
    log_record="Log record",
    yes="yes",
    no="no",
    count="Disclosures: {count}.",
    refusals=(
        "In {count} further case(s) a disclosure was refused because the law or the agreement "
        "did not allow it. Nothing about you was sent then."
    ),
    integrity=(
        "These disclosures are kept in a protected log of {size} records. Nobody can change or "
        "remove a record unnoticed: each can be checked by the number shown with it."
    ),
    object_heading="Do you disagree?",
    objection=(
        "You can ask the organisation that received your data to show, correct or erase it, or "
        "object to its use (GDPR, articles 15 to 21). Contact that organisation's data "
        "protection officer; their contact details are on its website.",
        "If an organisation took a decision about you based on this data, you can object to "
        "that decision with the organisation. The decision says how and by when.",
        "If you cannot resolve it with the organisation, you can complain to the Dutch Data "
        "Protection Authority (www.autoriteitpersoonsgegevens.nl) or go to court.",
    ),
    version="version",
    time_zone_note="Times in Dutch local time.",
    purposes={},
    signals={},
)


def texts_for(language: Language) -> ReportTexts:
    return DUTCH if language == "nl" else ENGLISH
