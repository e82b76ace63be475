package config_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/config"
)

// TestSecretKeyPrevious: NEXUS_SECRET_KEY_PREVIOUS is read as NEXUS_SECRET_KEY is, and the configuration's log
// says only whether it is set.
func TestSecretKeyPrevious(t *testing.T) {
	previous := bytes.Repeat([]byte{0xa5}, 32)
	encoded := base64.StdEncoding.EncodeToString(previous)
	for _, tc := range []struct {
		env  map[string]string
		want []byte
		log  string
	}{
		{map[string]string{"NEXUS_SECRET_KEY": secret}, nil, `"secret_key_previous":"unset"`},
		{map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_SECRET_KEY_PREVIOUS": encoded + "\n"}, previous, `"secret_key_previous":"set (masked)"`},
	} {
		c, err := config.Load(env(tc.env), false)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !bytes.Equal(c.SecretKeyPrevious, tc.want) {
			t.Errorf("SecretKeyPrevious = %x, want %x", c.SecretKeyPrevious, tc.want)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("configuration", "config", c)
		if !strings.Contains(buf.String(), tc.log) || strings.Contains(buf.String(), encoded) || strings.Contains(buf.String(), secret) {
			t.Errorf("logged configuration, want %s and no key:\n%s", tc.log, buf.String())
		}
	}
}
