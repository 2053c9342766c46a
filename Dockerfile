# One image for the whole Microville stack: `microville gateway`, `microville serve`
# (default) and `microville simulate`. Built by docker-compose.yml (`build: .`).
#
#   docker build -t microville-monitor .
#   docker run --rm -p 8000:8000 microville-monitor            # API on the sample site
#   docker run --rm microville-monitor check-config /etc/microville/sites.toml

# --- build: install the package and its dependencies into a virtualenv -------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/microville

WORKDIR /src
# pyproject declares README.md as the package's long description.
COPY pyproject.toml README.md ./
# The package folders (folder = import path; [tool.setuptools.packages.find] in pyproject.toml).
COPY microville ./microville
COPY domain ./domain
COPY stores ./stores
COPY cli ./cli
COPY gateway ./gateway
COPY service ./service
COPY firmware_sim ./firmware_sim
COPY bench ./bench
RUN /opt/microville/bin/pip install . \
    && /opt/microville/bin/microville --help >/dev/null

# --- runtime: the virtualenv only, no sources, no build tools, not root -------------
FROM python:3.11-slim

ENV PATH=/opt/microville/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MICROVILLE_CONFIG=/etc/microville/sites.toml \
    MICROVILLE_API_HOST=0.0.0.0 \
    MICROVILLE_API_PORT=8000

# WeasyPrint (monthly PDF reports) draws text with Pango; DejaVu is the reports' font.
# openssl: the broker-certs service of docker-compose.yml makes the broker's TLS
# certificate with it (deploy/mosquitto/make-certs.sh).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       fonts-dejavu-core openssl \
    && rm -rf /var/lib/apt/lists/*

# Data (SQLite store, dead letters, reports) lives in the user's home, /var/lib/microville.
RUN groupadd --system --gid 10001 microville \
    && useradd --system --uid 10001 --gid microville --home-dir /var/lib/microville \
       --create-home --shell /usr/sbin/nologin microville \
    && mkdir -p /etc/microville

COPY --from=build /opt/microville /opt/microville

USER microville
WORKDIR /var/lib/microville

EXPOSE 8000
# The API's healthcheck is set in docker-compose.yml (the gateway and the simulator
# run from this image too, and have no HTTP port).
ENTRYPOINT ["microville"]
CMD ["serve"]
