package stacks

import (
	"encoding/json"

	"github.com/compose-spec/compose-go/v2/types"
)

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func ptrNano(f float32) types.NanoCPUs { return types.NanoCPUs(f) }
