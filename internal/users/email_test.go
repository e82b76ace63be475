package users_test

import (
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/users"
)

func TestValidEmail(t *testing.T) {
	local64, label63 := strings.Repeat("a", 64), strings.Repeat("b", 63)
	tests := []struct {
		email string
		want  bool
	}{
		{"ada@example.com", true},
		{"Grace.Hopper+navy@mail.example.org", true},
		{"o'brien`{x}~@ex-ample.co", true},
		{local64 + "@example.com", true},
		{"a@" + label63 + ".com", true},
		{"a@" + strings.Repeat(label63+".", 3) + strings.Repeat("c", 60), true},  // 254 bytes
		{"a@" + strings.Repeat(label63+".", 3) + strings.Repeat("c", 61), false}, // 255 bytes
		{local64 + "a@example.com", false},
		{"a@" + label63 + "b.com", false},
		{"", false},
		{"ada", false},
		{"@example.com", false},
		{"ada@", false},
		{"ada@localhost", false},
		{"ada@-example.com", false},
		{"ada@example-.com", false},
		{".ada@example.com", false},
		{"ada.@example.com", false},
		{"a..da@example.com", false},
		{"ada@@example.com", false},
		{"a da@example.com", false},
		{" ada@example.com", false},
		{"ada@exa_mple.com", false},
		{"adà@example.com", false},
	}
	for _, tt := range tests {
		if got := users.ValidEmail(tt.email); got != tt.want {
			t.Errorf("ValidEmail(%q) = %v, want %v", tt.email, got, tt.want)
		}
	}
}
