package portal

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
)

func TestEditPartID(t *testing.T) {
	for _, tc := range []struct {
		partID string
		target types.MessageID
		isEdit bool
	}{
		{editPartID("$abc:example.org", "3EB0ORIG"), "3EB0ORIG", true},
		{editPartID("0", "ABCDEF0123"), "ABCDEF0123", true},
		{"edit:$legacy", "", true},
		{"edit:0", "", true},
		{"", "", false},
		{"1", "", false},
		{"poll_vote:0", "", false},
	} {
		target, isEdit := editTarget(tc.partID)
		if target != tc.target || isEdit != tc.isEdit {
			t.Errorf("editTarget(%q) = %q, %v; want %q, %v", tc.partID, target, isEdit, tc.target, tc.isEdit)
		}
	}
}
