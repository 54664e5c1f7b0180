"""Column types that mean the same on every database we support (Postgres, SQLite, MariaDB/MySQL).

MySQL compares text with its connection's collation, by default case- and accent-insensitive: a
unique key there would call ``Ab`` and ``ab`` (or ``é`` and ``e``) the same. Keys we compare
exactly get a binary collation on MySQL. Its ``FLOAT`` is single precision (a Unix time in it is
off by minutes), so a Unix time is a ``DOUBLE`` there, as ``FLOAT`` already is on Postgres.
"""

from sqlalchemy import Float, String
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

# SQLAlchemy's names for the two: mysql+pymysql:// and mariadb+pymysql://.
MYSQL_DIALECTS = ("mysql", "mariadb")


def exact_string(length: int) -> TypeEngine[str]:
    """A string compared byte for byte on every database."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *MYSQL_DIALECTS)


def unix_time() -> TypeEngine[float]:
    """Seconds since the epoch, with sub-second precision on every database."""
    return Float().with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL_DIALECTS)
