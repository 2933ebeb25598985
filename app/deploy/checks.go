package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// CheckBackupService checks, before anything is deployed, what the scheduled backup service will read when
// BACKUP_SCHEDULE is set: the backup settings (as `backup` reads them), an S3 endpoint, a well-formed key, and,
// with an external Keycloak (no keycloak network to reach its database), sources without keycloak. Every
// problem names its variable.
func CheckBackupService(c *command.CLI, sc *config.Stack, externalKeycloak bool) error {
	if sc.Vars["BACKUP_SCHEDULE"] == "" {
		return nil
	}
	var problems []config.Problem
	add := func(err error) error {
		var ce *config.Error
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
			return nil
		}
		return err
	}
	if _, err := config.LoadBackup(c.Sources()); add(err) != nil {
		return err
	}
	if sc.Vars["S3_ENDPOINT"] == "" {
		problems = append(problems, config.Problem{Var: "S3_ENDPOINT", Msg: "the backup service (BACKUP_SCHEDULE is set) stores its sets there: set S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or unset BACKUP_SCHEDULE"})
	}
	if key := sc.Vars["BACKUP_ENCRYPTION_KEY"]; key != "" {
		if _, err := backup.ParseKey(config.NewSecret(key)); add(err) != nil {
			return err
		}
	}
	if externalKeycloak && slices.Contains(strings.Split(sc.Vars["BACKUP_SOURCES"], ","), "keycloak") {
		problems = append(problems, config.Problem{Var: "BACKUP_SOURCES", Msg: "with --external-keycloak the backup service cannot reach Keycloak's database: set BACKUP_SOURCES=ziti,spire (and back Keycloak up where it runs)"})
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// LocalPublicURL reports whether Keycloak's public URL (KEYCLOAK_PUBLIC_URL, the issuer of its tokens) is a
// loopback address: right for --dev, wrong when users log in from other machines.
func LocalPublicURL(sc *config.Stack) (string, bool) {
	v := sc.Vars["KEYCLOAK_PUBLIC_URL"]
	u, err := url.Parse(v)
	if err != nil {
		return v, false
	}
	h := u.Hostname()
	return v, h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// FinishInterruptedRestores is up's hook (call it under the lock, before deploying: a deploy would replace the
// services' labels): every Swarm service a killed `restore --swarm` left scaled down is brought back to the
// replica count recorded in its labels (backup.ResumeSwarm), and said so. The files such a restore left beside a
// database are tidied by the next `restore`; the database itself is whole at every moment.
func FinishInterruptedRestores(ctx context.Context, c *command.CLI, s backup.LabelledServices) error {
	did, err := backup.ResumeSwarm(ctx, s, c.Log)
	for _, s := range did {
		fmt.Fprintf(c.Stdout, "interrupted restore: Swarm service %s brought back to its replica count\n", s)
	}
	if err != nil {
		return fmt.Errorf("bring back the services an interrupted restore stopped: %w", err)
	}
	return nil
}
