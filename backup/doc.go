// Package backup takes consistent snapshot sets of the system's state — the OpenZiti controller's database,
// SPIRE's datastore and Keycloak's database — into S3-compatible storage, lists and prunes them, and restores
// them after verifying every byte.
//
// # Sets
//
// One run makes one set, under <prefix>/<set ID>/ in the bucket:
//
//	started.json                 written first: the set is visible (in progress) while it is written
//	ziti.bbolt[.zst][.enc]       the controller's bbolt database
//	spire.sqlite3[.zst][.enc]    SPIRE's sqlite3 datastore
//	keycloak.pgdump[.zst][.enc]  Keycloak's PostgreSQL database, pg_dump custom format
//	manifest.json                written last: a set without it is incomplete and is never restored
//
// A set ID is the UTC start time and a random suffix (20261126T033700Z-1a2b), so IDs sort by start. The manifest
// records, per object, the size and SHA-256 of the bytes stored, the snapshot's size (and, unencrypted, its
// SHA-256: an encrypted snapshot is authenticated chunk by chunk instead), its format, the version the server
// reported, and for the set the start and end times, the host and the tool's version. Only
// folders named like set IDs are ever listed, pruned or restored: anything else under the prefix is left alone.
//
// # Sources and consistency
//
// Each object is a consistent copy taken while its server runs (Source):
//
//   - ZitiSource asks the controller to snapshot its database (POST /fabric/v1/database/snapshot, a bbolt read
//     transaction) to __DB_DIR__/zb-backup-<random>.db, i.e. next to its database, then reads that file and removes
//     it. The controller has no download endpoint: the backup must run where the controller's volume is mounted
//     (ZITI_DB_PATH is ctrl.db's path in that mount; with the openziti/ziti-controller image the database is
//     /ziti-controller/bbolt.db, owned by uid 2171, so run as that uid or root). The controller takes at most one
//     snapshot a minute; a run within that minute waits. HA (raft) controllers are not supported.
//   - SQLiteSource copies SPIRE's datastore with VACUUM INTO (one read transaction, write-ahead log included),
//     through a pure-Go SQLite (modernc.org/sqlite: no cgo, fits a FROM scratch image), into a temporary file
//     that is checked (PRAGMA quick_check) and streamed. It runs where SPIRE's data volume is mounted
//     (SPIRE_DATASTORE_PATH). A SPIRE with a PostgreSQL datastore would use PostgresSource instead.
//   - PostgresSource streams `pg_dump --format=custom --compress=0` (one repeatable-read transaction) without a
//     temporary file; pg_dump's exit status is checked before the object's last byte reaches the store, so a
//     failed dump never completes an upload. pg_dump, pg_restore and psql of the server's major version (or
//     newer) must be installed where the backup runs.
//
// The objects of a set are taken one after the other, seconds apart: each is consistent, the set is not an
// atomic cut across the three servers (none of them references another's rows).
//
// # Streaming, compression, encryption
//
// Each snapshot is read once and streamed: SHA-256 of the snapshot (unencrypted only) → zstd (SpeedFastest, 1 MiB
// window) → optional encryption → SHA-256 of the stored bytes → a multipart upload of unknown size
// (s3store.Client.Put), whose memory is (Concurrency+1) × PartSize (default 4 × 6 MiB, outside the Go heap)
// however large the snapshot; a part is sent while the next is encoded. Every part carries its SHA-256 in its
// request signature, and the stored size is compared with the bytes produced before an
// object counts. A failed source or upload aborts the upload and leaves no object; the run's set then has no
// manifest, and its other objects are removed.
//
// A snapshot whose first 256 KiB do not shrink by 3 % under zstd (already compressed or encrypted data) is
// stored without compression (no .zst in its key, compression "none" in its manifest entry): compressing it
// would cost CPU and gain nothing (BenchmarkEncode, encrypted: random data encodes at 830 MB/s stored, 668 MB/s
// through zstd, on this 2-core machine, medians of 3; 602 and 536 MB/s while the snapshot was hashed too: the
// SHA-256 of the stored bytes and AES-GCM are most of the rest).
//
// Throughput (BenchmarkStream1GiB: 1 GiB to the test bed's SeaweedFS, each mode in its own process; 2026-12-05, the
// machine shared with other test runs, so wall-clock ratios swing with its load): medians of 3, backup vs raw
// multipart upload of the same bytes / vs minio-go: database-like 1.45 / 1.85 (half the bytes go up), random
// 0.80 / 1.18; 5 more interleaved random pairs gave 0.51–1.52, median 1.35. Peak RSS: backup 60 MiB, raw 55,
// minio 35. What bounds the ratio is CPU: per GiB of random data SeaweedFS spends about 12 s of CPU, the raw
// upload's client 2.0 s, backup's 3.2 s (SHA-256 of the stored bytes and of each part, AES-GCM; 3.8 s while the
// snapshot was hashed too), so on 2 busy cores the ceiling is about (12 + 2.0) / (12 + 3.2) ≈ 0.92.
//
// Encryption (BACKUP_ENCRYPTION_KEY: 32 random bytes, base64) is client-side: each object gets a random 32-byte
// salt and its own AES-256 key, HKDF-SHA256(key, salt, set ID ‖ object name); the snapshot is sealed in 64 KiB
// chunks with AES-GCM, the nonce being the chunk counter and a last-chunk flag (the STREAM construction), so
// altered, reordered, dropped or truncated chunks, and objects moved between names or sets, fail to decrypt. An
// object is "ZBE1" ‖ salt ‖ chunks. The manifest of an encrypted set names the key by an ID derived from it and
// carries an HMAC-SHA256 whose key is derived from the key and the set ID, over the prefix, the set ID and the
// manifest's exact bytes (so over every object's stored and decoded SHA-256). Without the key nothing can be
// restored: keep it outside the bucket.
//
// # Threat model
//
// The bucket is the least trusted place: its credentials are shared by every host that backs up, other tenants
// or replication may reach it. The model is restic's: an attacker who can read and write the bucket (but not the
// key, nor the hosts that run ziti-bootstrap) is assumed. With a key configured, that attacker
//
//   - cannot read a snapshot (AES-256-GCM), only its sizes, the set IDs and times, and the host name;
//   - cannot alter, truncate, reorder or swap objects or chunks, nor move objects between sets or prefixes, nor
//     edit a manifest, nor copy a manifest under another set ID or prefix: every such set fails its MAC or its
//     digests and is refused by verify and restore, naming the set and the reason;
//   - cannot forge a set, nor downgrade one: a manifest without a MAC, without encryption, or of another format
//     is invalid when a key is configured (the rollback of issue 14: old objects copied under a newer set ID with
//     the encryption stripped). Invalid sets are never latest, never restored, and never take a retention slot;
//     `backup list` marks them, `backup prune --invalid` deletes them;
//   - cannot make restore write outside its staging directory: local names are made from the object's index, a
//     manifest may name only known sources, in their formats, under the keys this tool gives them (so under the
//     set's prefix), and is refused before a byte is written otherwise;
//   - cannot exhaust the disk through a small object: downloading stops at the declared size + 1, decoding at the
//     declared raw size + 1, both at most MaxSnapshotSize (256 GiB), and the staging space is checked for room
//     first; every refusal removes the staging directory;
//   - cannot hijack `latest` with a junk or future-dated set: latest is the newest valid set (authenticated, every
//     object present). A set's ID comes from the clock of the host that made it; Backup refuses to write a set
//     when that clock and the S3 server's (the modification time of the started marker) differ by more than
//     MaxClockSkew (10 min), and a set dated more than that after its manifest was stored (the server's clock),
//     or after now, is invalid.
//
// It can still: delete or withhold sets (keep a copy elsewhere, e.g. with object lock or versioning on the
// bucket); roll back to an older authentic set by deleting the newer ones (restore names the set it restores
// and when it was taken: check it); and fill the bucket. Without a key nothing is authenticated: the attacker
// can forge sets that restore, verify and retention cannot tell from real ones. `backup` then warns once, and
// `restore` refuses such a set unless given --allow-unauthenticated. A restored Keycloak dump runs only with the
// rights of the database's owner (see Restore), not a superuser's.
//
// # Listing and retention
//
// Lister classifies sets: complete (manifest, and every object it names present with its size), in progress (no
// manifest, active within the grace period, default 6 h), incomplete (no manifest, idle longer: a failed run),
// damaged (manifest, but an object missing or resized, or an unreadable manifest), other key (encrypted with a
// key not configured: not verifiable here), invalid (see the threat model). Only complete sets count. Policy.Plan
// decides, as restic's forget does, from keep-last / keep-daily / keep-weekly; it never deletes the newest
// complete set, a set in progress, a damaged set (left for a person to look at) or one of another key; it keeps
// invalid sets unless DeleteInvalid (prune --invalid), and always deletes incomplete ones. Prune
// deletes a set's manifest first, so a set is never seen complete with objects missing.
//
// # Restore
//
// Restore.Prepare resolves a set (an ID, or Latest: the newest valid set), refuses an incomplete one, one
// encrypted with another key, an invalid one, and, unless AllowUnauthenticated, one read without a key;
// downloads every object to a staging directory checking its size and SHA-256, decodes it (decrypting
// authenticates every chunk) checking the snapshot's size (and SHA-256, unencrypted), and lets each Target check the file (bbolt magic; SQLite quick_check; pg_restore
// --list). Any failure returns a CorruptError (or IncompleteError) naming the object, before anything is touched.
// Prepared.Apply then restores each target in turn:
//
//   - FileTarget (Ziti, SPIRE): copy the snapshot next to the database (with the old file's mode and owner); stop
//     the server; hard-link the database and its sidecars (SQLite -wal, -shm) aside as
//     <file>.before-restore-<set>, remove the old sidecars, rename the copy over the database (atomic: the
//     database is never absent); start the server and wait until it answers. The replaced files are kept.
//
// A restore killed at any point is completed or undone by the next `restore` (Recover), or, for the Swarm part,
// by `up` (ResumeSwarm): see journal.go. Swarm services carry their replica count in labels from before anything
// is stopped until they run again.
//   - PostgresTarget (Keycloak): never with a superuser's rights. As the database's owner: stop Keycloak;
//     pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction (a failure rolls back);
//     start Keycloak. As a superuser (the stacks' PostgreSQL): restore into a new database owned by a temporary
//     role without privileges (while Keycloak runs), stop Keycloak, swap the databases by renames in one
//     transaction (the old one kept as <db>_before_restore_<set>), give the objects to the owner, start Keycloak.
//     What an archive may do is bounded by that role's privileges: COPY ... FROM PROGRAM and the like are
//     refused by PostgreSQL (tested with a planted archive), whatever the archive holds.
//
// How a server is stopped and started is a Service: ExecService runs commands (host-run servers, e.g.
// systemctl), ProcessService signals a process and starts it again (the test bed), SwarmService scales a Swarm
// service to 0 and back through a Scaler (internal/docker's client: Scale returns once no task of the service
// runs, or its replica count does), Stopped leaves it to the operator. `restore --swarm`, run in the scheduled
// backup service's container, restores the stacks `up` deployed: <stack>_ziti-controller, <stack>_spire-server
// and <stack>_keycloak, each checked to exist before anything is downloaded or stopped.
//
// `backup` and `restore` take the tool's lock (the one apply, up and down take; see internal/lock), so a backup
// never copies a state a restore or an apply is half-way through, and a restore never runs beside either.
//
// Not in a set: the controller's PKI and configuration, SPIRE's signing keys (keys.json of the disk KeyManager)
// and configuration, Keycloak's configuration — they are deployment files and secrets, not database state. A
// restored SPIRE server runs with the keys it has (tested: it starts and serves the restored entries; a restore
// onto a server whose keys rotated after the backup is not tested).
//
// # Scheduled job
//
// Every setting is a variable (internal/config's BackupVars: BACKUP_PREFIX, BACKUP_SOURCES, BACKUP_SCHEDULE, …),
// so the scheduled job is configured by its service's environment; each is also a flag of the commands.
//
// Job runs Backup on a cron schedule as a long-lived service, retrying a failed run with exponential backoff
// (never into the next scheduled run), and serves /metrics (ziti_bootstrap_backup_last_success_timestamp_seconds,
// _last_duration_seconds, _last_size_bytes, _last_object_size_bytes{source}, _runs_total{result},
// _attempt_failures_total, _running, _next_run_timestamp_seconds, plus Go and process metrics) and /healthz
// (503 once a run has failed after its retries). In Swarm it must be placed on the node holding the
// controller's and SPIRE's volumes, mount both, and reach the controller's API and Keycloak's database.
package backup
