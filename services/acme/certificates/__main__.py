"""`python3 -m certificates run | check [--force] | status | health`.

run     the service: wait until the edge serves the challenge folder, then a check now and every
        ACME_CHECK_HOURS (12: twice a day, as Let's Encrypt asks); a failed check is an error line
        in the log, makes the service unhealthy, and is tried again after ACME_RETRY_MINUTES
check   one check at once (`make certificate`): obtain, or renew when due (--force: renew now);
        exits non-zero if it failed
status  the certificate nginx is given: names, issuer, serial, end (`make certificates`)
health  the container's health check: the last check did not fail, and the certificate (once
        there is one) has more than ACME_WARN_DAYS left
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from .certbot import CertificateError, run_certbot
from .edge import wait_for_edge
from .installed import Certificate, install, live, read_certificate, served
from .settings import ConfigError, Settings

log = logging.getLogger("acme")


def record_status(settings: Settings, ok: bool, detail: str) -> None:
    status = {"ok": ok, "at": datetime.now(UTC).isoformat(timespec="seconds"), "detail": detail}
    settings.status_file.write_text(json.dumps(status))


def check(settings: Settings, force: bool = False) -> Certificate:
    """One certbot check, then the pair it holds handed to nginx; the status the health check reads."""
    try:
        lineage = run_certbot(settings, force)
        now = datetime.now(UTC)
        installed = install(lineage, settings.certs_dir, now)
        certificate = read_certificate(live(settings.certs_dir) / "fullchain.pem")
    except (CertificateError, OSError, ValueError) as error:
        log.error("certificate check failed: %s", error)
        record_status(settings, False, str(error))
        raise
    if installed:
        log.info("new certificate for nginx (%s): %s", installed.name, certificate.describe(now))
    else:
        log.info("certificate unchanged, renewal not due: %s", certificate.describe(now))
    record_status(settings, True, certificate.serial)
    return certificate


def serve(settings: Settings) -> None:
    log.info(
        "certificates for %s from %s, checked every %d h",
        ", ".join(settings.domains),
        settings.server,
        settings.check_hours,
    )
    if settings.metrics_port:
        from .metrics import serve as serve_metrics  # prometheus_client: the service's, not the commands'

        serve_metrics(settings)
    wait_for_edge(settings)
    while True:
        try:
            check(settings)
            pause = settings.check_hours * 3600
        except (CertificateError, OSError, ValueError):
            pause = settings.retry_minutes * 60
        log.info("next check in %d min", pause // 60)
        time.sleep(pause)


def healthy(settings: Settings) -> tuple[bool, str]:
    try:
        status = json.loads(settings.status_file.read_text())
    except (OSError, ValueError):
        status = {"ok": True, "detail": "no check yet"}
    if not status.get("ok"):
        return False, f"the last check failed: {status.get('detail')}"
    certificate = served(settings.certs_dir)
    if certificate and certificate.days_left(datetime.now(UTC)) <= settings.warn_days:
        return False, f"the certificate ends in {certificate.days_left(datetime.now(UTC)):.1f} days"
    return True, "ok"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s acme: %(message)s")
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        settings = Settings.from_environ()
        if command == "run":
            serve(settings)
        elif command == "check" and args in ([], ["--force"]):
            print(check(settings, force=bool(args)).describe(datetime.now(UTC)))
        elif command == "status":
            certificate = served(settings.certs_dir)
            print(
                certificate.describe(datetime.now(UTC))
                if certificate
                else "no certificate yet: nginx serves a temporary one"
            )
        elif command == "health":
            ok, detail = healthy(settings)
            if not ok:
                print(detail, file=sys.stderr)
            return 0 if ok else 1
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ConfigError as error:
        log.error("%s", error)
        return 2
    except (CertificateError, OSError, ValueError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
