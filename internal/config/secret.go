package config

// Secret holds a credential. It prints, formats and marshals as "**redacted**"; only Value reveals it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the secret itself, for the one call that needs it.
func (s Secret) Value() string { return s.v }

// IsSet reports whether a non-empty value was given.
func (s Secret) IsSet() bool { return s.v != "" }

const redacted = "**redacted**"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalText keeps secrets out of JSON, YAML and slog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
