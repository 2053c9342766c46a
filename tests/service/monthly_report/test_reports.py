"""Monthly reports: the figures equal the API's, the PDF reads back, both languages,
the archive's hashes, the reports API and command."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
from fastapi.testclient import TestClient
from helpers.support import SAMPLE_CONFIG as SAMPLE
from helpers.support import SEED, load_sample
from typer.testing import CliRunner

from cli.main import app as cli_app
from domain.clock import fixed_clock
from domain.periods import localize
from domain.reporting import Language, Month
from domain.site import SitesConfig, read_sites
from domain.store import ReadingStore
from domain.targets import Verdict
from firmware_sim.building import ground_truth, simulate_building
from microville.settings import Settings
from service.alerts.engine import AlertEngine
from service.alerts.outbox import Outbox
from service.app import create_app
from service.monthly_report.figures import MonthlyReport, monthly_report
from service.monthly_report.make import generate_report
from service.monthly_report.render import render, render_html
from service.usecases.kernel import QueryError
from stores.ledger import SqliteLedger
from stores.reports import ReportArchive

OCTOBER = Month(2026, 10)  # holds the autumn DST change (25 October)
AFTER = datetime(2026, 12, 2, 12, tzinfo=UTC)  # when these reports are made


@dataclass
class Site:
    config: SitesConfig
    store: ReadingStore
    ledger: SqliteLedger
    truth: dict[str, float]  # October's ground truth [Wh]


@pytest.fixture
def sample(store: ReadingStore, tmp_path: Path) -> Iterator[Site]:
    tz = read_sites(SAMPLE).sites[0].tz
    start, end = localize(datetime(2026, 9, 1), tz), localize(datetime(2026, 11, 2), tz)
    config = load_sample(store, start, end)
    site = config.sites[0]
    frame = simulate_building(site, start, end, timedelta(minutes=30), seed=SEED)
    truth = ground_truth(frame, OCTOBER.start(tz), OCTOBER.end(tz))
    ledger = SqliteLedger(tmp_path / "ledger.db")
    yield Site(config, store, ledger, truth)
    ledger.close()


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.e2e
def test_report_figures_equal_the_api_and_the_ground_truth(sample: Site) -> None:
    site = sample.config.sites[0]
    report = monthly_report(site, sample.store, sample.ledger, OCTOBER, now=AFTER)
    e = report.month_energy
    # The simulator's own energies: indexes at both ends of the local month.
    assert e.import_wh == pytest.approx(sample.truth["import_wh"], abs=1e-6)
    assert e.export_wh == pytest.approx(sample.truth["export_wh"], abs=1e-6)
    assert e.production_wh == pytest.approx(sample.truth["production_wh"], abs=1e-6)
    assert e.evidence.coverage == 1.0
    # 31 local days, the last-Sunday-of-October one 25 hours long.
    assert len(report.days) == 31
    assert report.days[24].end.timestamp() - report.days[24].start.timestamp() == 25 * 3600
    assert sum(d.import_wh for d in report.days) == pytest.approx(e.import_wh)

    app = create_app(
        Settings(config=str(SAMPLE)), store=sample.store, sites=sample.config, ledger=sample.ledger
    )
    with TestClient(app) as client:
        energy = client.get(f"/api/v1/sites/{site.id}/energy", params={"period": "2026-10"})
        carbon = client.get(f"/api/v1/sites/{site.id}/carbon", params={"period": "2026-10"})
        targets = client.get(f"/api/v1/sites/{site.id}/targets", params={"period": "2026-10"})
        ytd_params = {"start": "2026-01-01", "end": "2026-11-01"}
        energy_ytd = client.get(f"/api/v1/sites/{site.id}/energy", params=ytd_params).json()
        carbon_ytd = client.get(
            f"/api/v1/sites/{site.id}/carbon", params={**ytd_params, "step": "year"}
        ).json()
    assert energy.status_code == carbon.status_code == targets.status_code == 200
    total = energy.json()["total"]
    assert e.final_net_wh / 1000 == pytest.approx(total["final_net_kwh"])
    assert e.primary_net_whep is not None
    assert e.primary_net_whep / 1000 == pytest.approx(total["primary_net_kwhep"])
    c = carbon.json()["total"]
    assert report.carbon_month.figures.operational_kg == pytest.approx(c["operational_kg"])
    assert report.carbon_month.figures.avoided_kg == pytest.approx(c["avoided_kg"])
    assert report.carbon_month.figures.net_kg == pytest.approx(c["net_kg"])
    # The year to date and its carbon come from the twelve months' queries: the same as
    # asking the API for them.
    y = report.year_to_date
    assert y.final_net_wh / 1000 == pytest.approx(energy_ytd["total"]["final_net_kwh"])
    assert y.evidence.coverage == pytest.approx(energy_ytd["total"]["evidence"]["coverage"])
    cy = report.carbon_year_to_date
    assert cy.figures.net_kg == pytest.approx(carbon_ytd["total"]["net_kg"])
    assert cy.evidence.coverage == pytest.approx(carbon_ytd["total"]["evidence"]["coverage"])
    assert 0 < y.evidence.coverage < 1  # data from September only
    api_verdicts = {v["target"]: v["verdict"] for v in targets.json()["verdicts"]}
    assert {j.target: j.verdict.value for j in report.targets_month} == api_verdicts

    # The rendered report shows those very figures, formatted.
    html = render_html(report, Language.EN)
    for wh in (e.production_wh, e.consumption_wh, e.import_wh, e.export_wh):
        assert f"{wh / 1000:,.0f} kWh" in html
    assert f"{c['net_kg']:,.0f} kgCO2e".replace("-", "−") in html


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_pdf_has_its_pages_charts_and_page_numbers_in_both_languages(sample: Site) -> None:
    site = sample.config.sites[0]
    report = monthly_report(site, sample.store, sample.ledger, OCTOBER, now=AFTER)
    for language, words in (
        (Language.FR, ["Rapport d'impact mensuel — octobre 2026", "Objectifs", "Énergie",
                       "Carbone", "Déchets", "Qualité des données", "Alertes du mois",
                       "Production et consommation par jour", "Facteurs et sources"]),
        (Language.EN, ["Monthly impact report — October 2026", "Targets", "Energy", "Carbon",
                       "Waste", "Data quality", "Alerts of the month",
                       "Production and consumption per day", "Factors and sources"]),
    ):  # fmt: skip
        pages, text = pdf_text(render(report, language).pdf)
        assert pages >= 3
        for word in words:
            assert word in text, (language, word)
        # Charts are vector SVG: their axis labels and legends are text in the PDF.
        assert "kgCO2e" in text and "kWh" in text
        assert f"Page 1 / {pages}" in text and f"Page {pages} / {pages}" in text
        # The factors are cited with their source.
        assert "RE2020" in text


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_summary_states_the_months_balance_in_plain_words(sample: Site) -> None:
    site = sample.config.sites[0]
    report = monthly_report(site, sample.store, sample.ledger, OCTOBER, now=AFTER)
    net = report.month_energy.final_net_wh
    html = render_html(report, Language.EN)
    word = "positive" if net >= 0 else "negative"
    assert re.search(rf"In October 2026, Microville 112 produced .* balance is {word}", html)
    html_fr = render_html(report, Language.FR)
    assert "En octobre 2026, Microville 112 a produit" in html_fr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_alerts_of_the_month_are_listed(sample: Site, tmp_path: Path) -> None:
    site = sample.config.sites[0]
    outbox = Outbox(tmp_path / "alerts.db", [])
    # Mid-November: the sample's silent meters fire (no data after 2 November).
    now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    engine = AlertEngine(
        sample.config, sample.store, tmp_path / "alerts.db", outbox, clock=fixed_clock(now)
    )
    engine.evaluate()
    events = engine.events_between(site.id, now - timedelta(hours=1), now + timedelta(hours=1))
    assert events
    this_month = Month.of(now, site.tz)
    report = monthly_report(site, sample.store, sample.ledger, this_month, engine, now=now)
    assert {a.alert_id for a in report.alerts} == {str(e["alert_id"]) for e in events}
    html = render_html(report, Language.EN)
    # Listed by their message, not their raw id.
    meter = str(events[0]["alert_id"]).rsplit(":", 1)[1]
    assert f"Meter {meter} has sent nothing since" in html and "fired" in html
    assert str(events[0]["alert_id"]) not in html
    # Another month has none.
    assert (
        monthly_report(site, sample.store, sample.ledger, OCTOBER, engine, now=AFTER).alerts == []
    )
    outbox.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_archive_records_hashes_and_detects_a_changed_file(sample: Site, tmp_path: Path) -> None:
    site = sample.config.sites[0]
    archive = ReportArchive(tmp_path / "reports")
    record = generate_report(site, sample.store, sample.ledger, archive, OCTOBER, now=AFTER)
    assert record.language is Language.FR  # the site's language
    assert archive.intact(record)
    pdf = archive.path(site.id, OCTOBER, Language.FR, "pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    pdf.write_bytes(pdf.read_bytes() + b"% edited\n")
    assert not archive.intact(record)
    again = generate_report(site, sample.store, sample.ledger, archive, OCTOBER, now=AFTER)
    assert archive.intact(again)
    assert archive.versions(site.id, OCTOBER, Language.FR) == 2
    with pytest.raises(QueryError, match="not over yet"):
        now = datetime(2026, 11, 15, 12, tzinfo=UTC)
        generate_report(site, sample.store, sample.ledger, archive, Month.of(now, site.tz), now=now)
    archive.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_reports_api_lists_serves_and_generates(sample: Site, tmp_path: Path) -> None:
    site = sample.config.sites[0]
    settings = Settings(config=str(SAMPLE), reports_dir=str(tmp_path / "reports"))
    app = create_app(settings, store=sample.store, sites=sample.config, ledger=sample.ledger)
    base = f"/api/v1/sites/{site.id}/reports"
    with TestClient(app) as client:
        assert client.get(base).json() == []
        missing = client.get(f"{base}/2026-10/pdf")
        assert missing.status_code == 404 and "POST" in missing.json()["detail"]
        made = client.post(f"{base}/2026-10", params={"lang": "en"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["language"] == "en" and body["intact"] is True
        pdf = client.get(body["pdf_url"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["x-content-sha256"] == body["pdf_sha256"]
        _, text = pdf_text(pdf.content)
        assert "Monthly impact report — October 2026" in text
        html = client.get(body["html_url"])
        assert html.status_code == 200 and "<html" in html.text
        listed = client.get(base).json()
        assert [(r["month"], r["language"]) for r in listed] == [("2026-10", "en")]
        for bad, status in (("2026-13", 422), ("october", 422), ("2999-01", 422)):
            response = client.post(f"{base}/{bad}")
            assert response.status_code == status, (bad, response.text)
            assert response.json()["detail"]
        assert client.get(f"{base}/2026-10/docx").status_code == 422
        assert client.post(f"{base}/2026-10", params={"lang": "de"}).status_code == 422


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_report_command_makes_several_months(sample: Site, store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli_app,
        ["report", "--site", "microville112", "--month", "2026-09", "--until", "2026-10",
         "--lang", "en", "--out", str(out), "--config", str(SAMPLE),
         "--store", store_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "microville112-2026-09.en.html",
        "microville112-2026-09.en.pdf",
        "microville112-2026-10.en.html",
        "microville112-2026-10.en.pdf",
    ]
    assert "2026-10 (en)" in result.output and "sha256" in result.output
    bad = CliRunner().invoke(
        cli_app, ["report", "--site", "microville112", "--month", "10/2026", "-c", str(SAMPLE)]
    )
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_verdict_words_exist_in_both_languages() -> None:
    from service.monthly_report.words import Texts

    for language in Language:
        t = Texts(language)
        for verdict in Verdict:
            assert t[verdict.value]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_span_must_be_made_of_whole_periods(sample: Site) -> None:
    from domain.periods import Step
    from service.usecases.energy import energy_report

    site = sample.config.sites[0]
    start, end = OCTOBER.start(site.tz), OCTOBER.end(site.tz)
    mid = localize(datetime(2026, 10, 15, 12), site.tz)
    with pytest.raises(QueryError, match="whole periods"):
        energy_report(site, sample.store, start, end, Step.DAY, spans=[(start, mid)])
    report = energy_report(site, sample.store, start, end, Step.DAY, spans=[(start, end)])
    assert report.spans[0].balance == report.total.balance


# --- a report that never overclaims; its words ------------------------------------------

MARCH = Month(2026, 3)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_month_without_data_says_so_and_claims_nothing(
    store: ReadingStore, tmp_path: Path
) -> None:
    """Empty store: the old summary said "positif (+0 kWh)" and "à énergie positive"."""
    site = read_sites(SAMPLE).sites[0]
    ledger = SqliteLedger(tmp_path / "ledger.db")
    report = monthly_report(site, store, ledger, MARCH, now=AFTER)
    _, fr = pdf_text(render(report, Language.FR).pdf)
    _, en = pdf_text(render(report, Language.EN).pdf)
    flat_fr, flat_en = " ".join(fr.split()), " ".join(en.split())
    assert "Aucune donnée pour mars 2026" in flat_fr and "Aucune donnée sur la période" in flat_fr
    assert "No data for March 2026" in flat_en and "No data for the period" in flat_en
    for claim in ("à énergie positive", "positif", "+0 kWh"):
        assert claim not in flat_fr, claim
    for claim in ("energy-positive", "is positive", "+0 kWh"):
        assert claim not in flat_en, claim
    ledger.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_twelve_months_at_low_coverage_are_not_provable_and_carbon_compares_like_months(
    sample: Site,
) -> None:
    """October with data since September only: 12-month coverage ~16 %; the old summary
    called the building energy-positive and set 12 months of embodied carbon against
    two of operation."""
    site = sample.config.sites[0]
    report = monthly_report(site, sample.store, sample.ledger, OCTOBER, now=AFTER)
    assert report.rolling_12.evidence.coverage < site.targets.min_coverage
    fr = " ".join(summary_text(report, Language.FR).split())
    en = " ".join(summary_text(report, Language.EN).split())
    assert "le bilan annuel est non démontrable" in fr and "à énergie positive" not in fr
    assert "the annual balance is not provable" in en and "energy-positive" not in en
    measured = report.carbon_measured
    assert measured is not None
    assert "Sur les 2 mois ayant des données (sur 12)" in fr
    assert measured.figures.embodied_amortised_kg == pytest.approx(
        sum(c.figures.embodied_amortised_kg for c in report.carbon_months[-2:])
    )


def summary_text(report: MonthlyReport, language: Language) -> str:
    from service.monthly_report.render import summary
    from service.monthly_report.words import Texts

    return " ".join(summary(report, Texts(language)))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_french_report_has_french_words_criteria_in_words_and_board_sources(
    sample: Site,
) -> None:
    from domain.records import WasteEntry
    from domain.waste import WasteStream

    site = sample.config.sites[0]
    when = localize(datetime(2026, 10, 12, 10), site.tz)
    sample.ledger.add_waste_entries(site.id, [
        WasteEntry(time=when, stream=WasteStream.ENERGY_RECOVERY, mass_kg=7.0),
        WasteEntry(time=when, stream=WasteStream.LANDFILL, mass_kg=3.0),
        WasteEntry(time=when, stream=WasteStream.RECYCLING, mass_kg=20.0),
    ])  # fmt: skip
    report = monthly_report(site, sample.store, sample.ledger, OCTOBER, now=AFTER)
    _, text = pdf_text(render(report, Language.FR).pdf)
    flat = " ".join(text.split())
    for english in ("energy_recovery", "landfill", "recycling", "electricity",
                    "primary_energy_balance_kwh", "net_carbon_kg", "set carbon_factors",
                    "site configuration"):  # fmt: skip
        assert english not in flat, english
    assert "Valorisation énergétique" in flat and "Enfouissement ou incinération" in flat
    assert "Électricité" in flat
    assert "Bilan net en énergie primaire ≥ 0 kWhep" in flat
    assert "RE2020, arrêté du 4 août 2021" in flat


def test_month_abbreviations_come_from_the_locale() -> None:
    """The old labels sliced three letters: June and July were both "jui."."""
    from service.monthly_report.words import Texts

    fr, en = Texts(Language.FR), Texts(Language.EN)
    labels = {m: fr.month_short(Month(2026, m)).split("\n")[0] for m in range(1, 13)}
    assert len(set(labels.values())) == 12
    assert (labels[6], labels[7], labels[5]) == ("juin", "juil.", "mai")
    assert en.month_short(Month(2026, 6)) == "Jun\n2026" != en.month_short(Month(2026, 7))
    assert en.month_short(Month(2026, 5)) == "May\n2026"
    assert fr.coverage(0.949) == "94,9\u202f%" and en.coverage(0.97) == "97%"
