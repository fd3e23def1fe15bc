"""The stream catalog: sources and the streams read from them, declared in YAML.

Adding a table is one entry under `streams:`; connection URLs come from environment variables
that the YAML names, so no secret is ever written in it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import dagster as dg

from dw_pipelines.ingest.assets import build_stream_asset, source_resource_key
from dw_pipelines.ingest.files import FileStreamSettings, build_file_stream_defs
from dw_pipelines.resources.s3 import S3Resource
from dw_pipelines.resources.salesforce import SalesforceResource
from dw_pipelines.resources.sql_source import SqlSourceResource
from dw_pipelines.sync.files.formats import check_type_labels
from dw_pipelines.sync.files.spec import CsvOptions, FileStreamSpec
from dw_pipelines.sync.sources.salesforce_defaults import CURSOR_FALLBACKS, DEFAULT_API_VERSION
from dw_pipelines.sync.spec import DeclarationError, StreamSpec, SyncMode, parse_duration

if TYPE_CHECKING:
    from dw_pipelines.ingest.cdc import CdcSettings


class CdcModel(dg.Model):
    """Change data capture settings of a PostgreSQL source (used by its `mode: cdc` streams)."""

    slot: str | None = None
    """Replication slot name; default `dw_<source>`."""
    publication: str | None = None
    """Publication name; default `dw_<source>`."""
    sensor_interval_seconds: int = 30
    batch_changes: int = 50_000
    commit_interval_seconds: float = 5.0
    advance_after_bytes: int = 16 << 20
    lag_warn_bytes: int = 256 << 20
    lag_fail_bytes: int = 1 << 30
    lag_warn_age: str = "15 minutes"
    lag_fail_age: str = "1 hour"

    def to_settings(self) -> CdcSettings:
        # CDC (psycopg2, the runner) is loaded only by catalogs that declare CDC streams.
        from dw_pipelines.ingest.cdc import CdcSettings
        from dw_pipelines.sync.cdc.runner import CdcOptions

        return CdcSettings(
            options=CdcOptions(
                slot=self.slot,
                publication=self.publication,
                batch_changes=self.batch_changes,
                commit_interval_s=self.commit_interval_seconds,
            ),
            sensor_interval_s=self.sensor_interval_seconds,
            advance_after_bytes=self.advance_after_bytes,
            lag_warn_bytes=self.lag_warn_bytes,
            lag_fail_bytes=self.lag_fail_bytes,
            lag_warn_age=parse_duration(self.lag_warn_age),
            lag_fail_age=parse_duration(self.lag_fail_age),
        )


def env(name: str | None) -> dg.EnvVar | None:
    """A secret or setting read from the environment variable the YAML names (if it names one)."""
    return dg.EnvVar(name) if name else None


class S3Model(dg.Model):
    """Where an `s3` source's bucket lives and how to reach it. Secrets are named by env var;
    without keys, boto3's default chain (instance role, ~/.aws, AWS_* variables) is used."""

    region: str | None = None
    endpoint_url_env: str | None = None
    """Env var holding the endpoint of an S3-compatible store; unset for AWS."""
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    session_token_env: str | None = None
    role_arn: str | None = None
    """A role to assume with the credentials above."""
    external_id_env: str | None = None
    path_style: bool = False

    def to_resource(self) -> S3Resource:
        return S3Resource(
            region=self.region,
            endpoint_url=env(self.endpoint_url_env),  # type: ignore[arg-type]
            access_key_id=env(self.access_key_id_env),  # type: ignore[arg-type]
            secret_access_key=env(self.secret_access_key_env),  # type: ignore[arg-type]
            session_token=env(self.session_token_env),  # type: ignore[arg-type]
            role_arn=self.role_arn,
            external_id=env(self.external_id_env),  # type: ignore[arg-type]
            path_style=self.path_style,
        )


class SalesforceModel(dg.Model):
    """How to reach a Salesforce org. Credentials are named by environment variable, never
    written here: give the set for one way of logging in (password + token, JWT, client
    credentials, or session id + instance URL)."""

    username_env: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    consumer_key_env: str | None = None
    consumer_secret_env: str | None = None
    private_key_env: str | None = None
    """The PEM private key of the connected app's certificate (OAuth 2.0 JWT bearer)."""
    session_id_env: str | None = None
    instance_url_env: str | None = None
    domain: str = "login"
    """`login`, `test` (sandbox) or a My Domain such as `acme.my`."""
    domain_env: str | None = None
    """Takes the domain from this environment variable instead (one per deployment)."""
    ca_bundle_env: str | None = None
    api_version: str = DEFAULT_API_VERSION
    bulk_threshold: int = 50_000
    """Reads of at least this many records use Bulk API 2.0 query jobs, smaller ones REST."""
    bulk_page_records: int = 50_000
    bulk_poll_seconds: float = 2.0
    bulk_timeout_seconds: float = 3600.0
    quota_share: float = 0.8
    """A sync fails before the org has used this share of its daily API requests."""
    max_retries: int = 3
    """Retries of a call failing with 5xx, UNABLE_TO_LOCK_ROW or a timeout (backoff doubles)."""
    request_timeout_seconds: float = 120.0
    reconcile_schedule: str | None = "0 4 * * 0"
    """Cron of `<source>_reconcile_job`: every stream synced, then its keys compared with the
    org's to catch purged records (starts stopped). Null: no such job."""
    pool: str = "salesforce"
    """Dagster concurrency pool of the source's streams; its limit is set on the instance
    (dagster.yaml `concurrency.pools.default_limit`, or `dagster instance concurrency set`)."""

    def to_resource(self, name: str) -> SalesforceResource:
        return SalesforceResource(
            username=env(self.username_env),
            password=env(self.password_env),
            security_token=env(self.security_token_env),
            consumer_key=env(self.consumer_key_env),
            consumer_secret=env(self.consumer_secret_env),
            private_key=env(self.private_key_env),
            session_id=env(self.session_id_env),
            instance_url=env(self.instance_url_env),
            domain=env(self.domain_env) or self.domain,
            ca_bundle=env(self.ca_bundle_env),
            api_version=self.api_version,
            bulk_threshold=self.bulk_threshold,
            bulk_page_records=self.bulk_page_records,
            bulk_poll_seconds=self.bulk_poll_seconds,
            bulk_timeout_seconds=self.bulk_timeout_seconds,
            quota_share=self.quota_share,
            max_retries=self.max_retries,
            request_timeout_seconds=self.request_timeout_seconds,
            name=name,
        )


class SourceModel(dg.Model):
    """A system streams are read from."""

    type: Literal["postgres", "mysql", "sqlite", "s3", "salesforce"]
    url_env: str | None = None
    """Name of the environment variable holding the SQLAlchemy URL (with its credentials)."""
    s3: S3Model | None = None
    """`type: s3`: the store's settings."""
    batch_rows: int = 50_000
    description: str | None = None
    cdc: CdcModel | None = None
    """Change data capture settings (PostgreSQL), for streams with `mode: cdc`."""
    salesforce: SalesforceModel | None = None
    """Settings of a `type: salesforce` source."""

    def to_resource(self, name: str) -> dg.ConfigurableResource:
        if self.type == "s3":
            return (self.s3 or S3Model()).to_resource()
        if self.type == "salesforce":
            return (self.salesforce or SalesforceModel()).to_resource(name)
        return SqlSourceResource(
            url=dg.EnvVar(self.url_env or ""),
            name=name,
            batch_rows=self.batch_rows,
            url_env=self.url_env,
        )


class CsvModel(dg.Model):
    delimiter: str | None = None
    """Default `,` (tab for tsv)."""
    header: bool = True
    column_names: list[str] | None = None
    """Required when `header: false`."""
    quote_char: str = '"'
    null_values: list[str] = [""]
    encoding: str = "utf-8"


class FilesModel(dg.Model):
    """An `s3` source's stream: the objects under a prefix, loaded once each."""

    bucket: str
    prefix: str = ""
    glob: str = "*"
    """Matched against the key after the prefix (`*` crosses `/`)."""
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    """Default: from each key's extension."""
    compression: Literal["auto", "gzip", "zstd", "none"] = "auto"
    csv: CsvModel = CsvModel()
    column_types: dict[str, str] = {}
    """Overrides of inferred types, e.g. `amount: decimal(12,2)`, `ts: timestamptz`."""
    layout: Literal["files", "cur2", "cur_legacy"] = "files"
    """`cur2` / `cur_legacy`: an AWS Cost and Usage Report export, loaded by its manifests."""
    mode: Literal["append", "merge"] = "append"
    schema_policy: Literal["freeze", "evolve"] | None = None
    """freeze (default): every file has the stream's columns; evolve (CUR default): new columns
    are added, missing ones are NULL."""
    on_rewrite: Literal["replace", "ignore"] = "replace"
    max_bad_rows: int = 0
    partitioning: Literal["none", "modified_date", "key_date"] = "none"
    key_date_pattern: str = r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})"
    start_date: str = "2024-01-01"
    sensor_interval_seconds: int = 60
    max_files_per_run: int = 500
    max_runs_per_tick: int = 10
    lookback: str = "1 hour"

    def to_settings(self) -> FileStreamSettings:
        return FileStreamSettings(
            sensor_interval_s=self.sensor_interval_seconds,
            max_files_per_run=self.max_files_per_run,
            max_runs_per_tick=self.max_runs_per_tick,
            lookback=parse_duration(self.lookback),
            start_date=self.start_date,
        )


class StreamModel(dg.Model):
    """One source table (or one prefix of files) synced into one warehouse table."""

    source: str
    object: str | None = None
    """SQL sources: the table to read."""
    files: FilesModel | None = None
    """`s3` sources: the objects to load."""
    name: str | None = None
    mode: Literal["full_refresh", "incremental_append", "incremental_merge", "cdc"] = "full_refresh"
    primary_key: list[str] = []
    cursor: str | None = None
    lookback: int | str | None = None
    columns: list[str] | None = None
    schema_policy: Literal["add_columns", "evolve", "freeze"] = "add_columns"
    group: str | None = None
    owners: list[str] | None = None
    description: str | None = None
    schedule: str | None = None
    """Optional cron: gives this stream its own job and schedule besides the shared ones."""
    deletes: Literal["hard", "soft"] = "hard"
    """cdc, and incremental_merge from Salesforce: remove deleted rows, or keep them with
    `_dw_deleted_at` set."""
    exclude_columns: list[str] = []
    """Columns not to sync (e.g. large text fields), when `columns` does not list them."""

    def to_file_spec(self) -> FileStreamSpec:
        f = self.files
        assert f is not None
        return FileStreamSpec(
            source=self.source,
            name=self.name or "",
            bucket=f.bucket,
            prefix=f.prefix,
            glob=f.glob,
            format=f.format,  # type: ignore[arg-type]
            compression=f.compression,
            csv=CsvOptions(
                delimiter=f.csv.delimiter,
                header=f.csv.header,
                column_names=tuple(f.csv.column_names) if f.csv.column_names else None,
                quote_char=f.csv.quote_char,
                null_values=tuple(f.csv.null_values),
                encoding=f.csv.encoding,
            ),
            column_types=dict(f.column_types),
            primary_key=tuple(self.primary_key),
            mode=f.mode,
            on_rewrite=f.on_rewrite,
            max_bad_rows=f.max_bad_rows,
            partitioning=f.partitioning,  # type: ignore[arg-type]
            key_date_pattern=f.key_date_pattern,
            layout=f.layout,  # type: ignore[arg-type]
            schema_policy=f.schema_policy,  # type: ignore[arg-type]
        )

    def to_spec(self) -> StreamSpec:
        return StreamSpec(
            source=self.source,
            object=self.object or "",
            mode=self.mode,  # type: ignore[arg-type]
            primary_key=tuple(self.primary_key),
            cursor=self.cursor,
            lookback=self.lookback,
            columns=tuple(self.columns) if self.columns is not None else None,
            schema_policy=self.schema_policy,  # type: ignore[arg-type]
            name=self.name or "",
            deletes=self.deletes,
            exclude_columns=tuple(self.exclude_columns),
        )


class StreamCatalog(dg.Component, dg.Model, dg.Resolvable):
    """Declares sources and streams; builds one asset per stream, one resource per source."""

    sources: dict[str, SourceModel]
    streams: list[StreamModel]
    owners: list[str] = []
    """Default owners for every stream that names none."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        specs = self.validated_specs()
        assets, jobs, schedules = [], [], []
        cdc_defs = [self._cdc_defs(name) for name in self.sources if self._cdc_streams(name)]
        file_defs = []
        for stream, spec in zip(self.streams, specs, strict=True):
            if isinstance(spec, FileStreamSpec):
                assert stream.files is not None
                file_defs.append(
                    build_file_stream_defs(
                        spec,
                        stream.files.to_settings(),
                        description=stream.description,
                        owners=stream.owners if stream.owners is not None else self.owners,
                        group=stream.group,
                    )
                )
                continue
            if spec.mode is SyncMode.CDC:
                continue
            source = self.sources[spec.source]
            assets.append(
                build_stream_asset(
                    spec,
                    source_kind=source.type,
                    description=stream.description,
                    owners=stream.owners if stream.owners is not None else self.owners,
                    group=stream.group,
                    pool=(source.salesforce or SalesforceModel()).pool
                    if source.type == "salesforce"
                    else None,
                )
            )
            if stream.schedule:
                job = dg.define_asset_job(
                    f"{spec.source}_{spec.name}_job",
                    selection=[dg.AssetKey([spec.source, spec.name])],
                )
                jobs.append(job)
                schedules.append(
                    dg.ScheduleDefinition(
                        name=f"{spec.source}_{spec.name}_schedule",
                        job=job,
                        cron_schedule=stream.schedule,
                        execution_timezone="UTC",
                        default_status=dg.DefaultScheduleStatus.STOPPED,
                    )
                )
        for name, source in self.sources.items():
            reconcile_job = self._reconcile_job(name, specs)
            if reconcile_job is not None:
                jobs.append(reconcile_job)
                schedules.append(
                    dg.ScheduleDefinition(
                        name=f"{name}_reconcile_schedule",
                        job=reconcile_job,
                        cron_schedule=(source.salesforce or SalesforceModel()).reconcile_schedule,
                        execution_timezone="UTC",
                        default_status=dg.DefaultScheduleStatus.STOPPED,
                    )
                )
        resources = {
            source_resource_key(name): source.to_resource(name)
            for name, source in self.sources.items()
        }
        return dg.Definitions.merge(
            dg.Definitions(
                assets=assets,
                jobs=jobs,
                schedules=schedules,
                resources=resources,
            ),
            *cdc_defs,
            *file_defs,
        )

    def _cdc_streams(self, source: str) -> list[StreamModel]:
        return [s for s in self.streams if s.source == source and s.mode == "cdc"]

    def _cdc_defs(self, source: str) -> dg.Definitions:
        from dw_pipelines.ingest.cdc import build_cdc_defs

        streams = self._cdc_streams(source)
        specs = [s.to_spec() for s in streams]
        settings = (self.sources[source].cdc or CdcModel()).to_settings()
        return build_cdc_defs(
            source,
            specs,
            settings,
            descriptions={sp.name: s.description for s, sp in zip(streams, specs, strict=True)},
            owners={
                sp.name: s.owners if s.owners is not None else self.owners
                for s, sp in zip(streams, specs, strict=True)
            },
            groups={sp.name: s.group for s, sp in zip(streams, specs, strict=True)},
        )

    def validated_specs(self) -> list[StreamSpec | FileStreamSpec]:
        """Specs for every stream, or an error naming the offending entry and field."""
        specs: list[StreamSpec | FileStreamSpec] = []
        seen: dict[str, int] = {}
        for index, stream in enumerate(self.streams):
            sid = f"{stream.source}.{stream.name or stream.object or (stream.files.prefix if stream.files else '')}"
            entry = f"streams[{index}] ('{sid}')"
            if stream.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none declared"
                raise DeclarationError(
                    sid, "source", f"unknown source '{stream.source}' (sources: {known})", entry
                )
            if self.sources[stream.source].type == "s3":
                file_spec = self._file_spec(sid, entry, stream)
                if file_spec.stream_id in seen:
                    raise DeclarationError(
                        sid, "name", f"duplicate stream '{file_spec.stream_id}'", entry
                    )
                seen[file_spec.stream_id] = index
                specs.append(file_spec)
                continue
            if stream.files is not None or not stream.object:
                raise DeclarationError(
                    sid, "object", "a SQL source's stream names a table (`files:` is for s3)", entry
                )
            spec = stream.to_spec()
            source = self.sources[stream.source]
            try:
                if source.type == "salesforce":
                    # Every Salesforce record has an Id; an incremental stream without a
                    # cursor takes SystemModstamp (or LastModifiedDate, CreatedDate) at run time.
                    spec = replace(spec, primary_key=spec.primary_key or ("Id",))
                    replace(spec, cursor=spec.cursor or CURSOR_FALLBACKS[0]).validate()
                else:
                    self._check_url(sid, entry, stream.source)
                    spec.validate()
            except DeclarationError as exc:
                raise DeclarationError(sid, exc.field_name, exc.problem, entry) from None
            if spec.stream_id in seen:
                raise DeclarationError(
                    sid,
                    "name",
                    f"duplicate stream '{spec.stream_id}' (also streams[{seen[spec.stream_id]}]);"
                    " give one of them a distinct 'name'",
                    entry,
                )
            if stream.schedule:
                _check_cron(sid, entry, stream.schedule)
            if spec.mode is SyncMode.CDC:
                self._check_cdc(sid, entry, stream)
            seen[spec.stream_id] = index
            specs.append(spec)
        for name, source in self.sources.items():
            cron = source.salesforce.reconcile_schedule if source.salesforce else None
            if cron:
                _check_cron(name, f"sources.{name}", cron, "salesforce.reconcile_schedule")
        return specs

    def _file_spec(self, sid: str, entry: str, stream: StreamModel) -> FileStreamSpec:
        if stream.files is None or stream.object:
            raise DeclarationError(
                sid, "files", "an s3 source's stream declares `files:` (not `object:`)", entry
            )
        for field_name in ("mode", "cursor", "lookback", "columns", "schedule"):
            if getattr(stream, field_name) not in (None, "full_refresh"):
                raise DeclarationError(
                    sid, field_name, "does not apply to file streams (see `files:`)", entry
                )
        spec = stream.to_file_spec()
        try:
            spec.validate()
            check_type_labels(spec.column_types)
            parse_duration(stream.files.lookback)
        except DeclarationError as exc:
            raise DeclarationError(sid, f"files.{exc.field_name}", exc.problem, entry) from None
        except ValueError as exc:
            raise DeclarationError(sid, "files", str(exc), entry) from None
        return spec

    def _reconcile_job(self, source: str, specs: list[StreamSpec]) -> dg.JobDefinition | None:
        """A job syncing every incremental stream of a Salesforce source, then reconciling it."""
        model = self.sources[source]
        if (
            model.type != "salesforce"
            or not (model.salesforce or SalesforceModel()).reconcile_schedule
        ):
            return None
        streams = [s for s in specs if s.source == source and s.mode is SyncMode.INCREMENTAL_MERGE]
        if not streams:
            return None
        return dg.define_asset_job(
            f"{source}_reconcile_job",
            selection=[dg.AssetKey([s.source, s.name]) for s in streams],
            config={
                "ops": {f"{s.source}__{s.name}": {"config": {"reconcile": True}} for s in streams}
            },
            description=f"Sync {source}'s merge streams, then delete rows whose record was purged.",
        )

    def _check_url(self, sid: str, entry: str, source: str) -> None:
        if not self.sources[source].url_env:
            raise DeclarationError(
                sid,
                "url_env",
                f"source '{source}' needs url_env (the variable with its URL)",
                entry,
            )

    def _check_cdc(self, sid: str, entry: str, stream: StreamModel) -> None:
        source = self.sources[stream.source]
        if source.type != "postgres":
            raise DeclarationError(
                sid,
                "mode",
                f"cdc needs a postgres source; '{stream.source}' is {source.type}",
                entry,
            )
        if stream.schedule:
            raise DeclarationError(
                sid,
                "schedule",
                f"cdc streams run together per source: use the {stream.source}_cdc_sensor",
                entry,
            )
        if source.cdc is not None:
            for field_name in ("lag_warn_age", "lag_fail_age"):
                try:
                    parse_duration(getattr(source.cdc, field_name))
                except ValueError as exc:
                    raise DeclarationError(sid, f"cdc.{field_name}", str(exc), entry) from None


def _check_cron(sid: str, entry: str, cron: str, field_name: str = "schedule") -> None:
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except Exception as exc:
        raise DeclarationError(
            sid, field_name, f"'{cron}' is not a valid cron: {exc}", entry
        ) from None
