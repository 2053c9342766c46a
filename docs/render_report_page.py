"""Draw docs/report-page1.png: the first page of a monthly report that `microville demo`
left in its data directory, rendered from the PDF itself. Run from the repository root
after `microville demo --no-serve`:

    python docs/render_report_page.py [demo-data/reports/microville112/2026-06.en.pdf]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pypdfium2 as pdfium

DEFAULT_PDF = Path("demo-data/reports/microville112/2026-06.en.pdf")
OUTPUT = Path(__file__).parent / "report-page1.png"


def main() -> None:
    pdf = pdfium.PdfDocument(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PDF)
    pdf[0].render(scale=1.25).to_pil().save(OUTPUT, optimize=True)
    print(f"{OUTPUT} ({len(pdf)} pages in the PDF)")


if __name__ == "__main__":
    main()
