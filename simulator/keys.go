package simulator

import (
	"fmt"
	"strings"
)

// EventKeys returns the 45 values of the AuditEventKey enum of the OpenAPI
// document, in its order. The simulator generates every one of them.
func EventKeys() []string {
	return []string{
		"user_login", "user_logout", "user_2fa_fail", "user_2fa_success",
		"user_created", "user_deleted", "user_role_changed", "user_updated",
		"tag_created", "tag_deleted", "user_added_to_tag", "user_removed_from_tag",
		"chat_created", "chat_renamed", "chat_permission_changed",
		"user_chat_join", "user_chat_leave", "tag_added_to_chat", "tag_removed_from_chat",
		"message_updated", "message_deleted", "message_created",
		"reaction_created", "reaction_deleted", "thread_created",
		"access_token_created", "access_token_updated", "access_token_destroy",
		"kms_encrypt", "kms_decrypt",
		"audit_events_accessed", "dlp_violation_detected",
		"search_users_api", "search_chats_api", "search_messages_api",
		"bot_scopes_updated", "bot_webhook_settings_updated", "bot_token_recreated",
		"bot_deleted", "bot_oauth_client_updated",
		"oauth_authorization_granted", "oauth_authorization_revoked",
		"video_call_started", "video_call_finished", "video_call_recording_ready",
	}
}

// UnknownEventKeys returns the keys that Config.UnknownKeys adds: keys a
// newer API might send that no list knows yet.
func UnknownEventKeys() []string {
	return []string{"user_passkey_registered", "workspace_export_requested"}
}

// keyWeight is how common a key is relative to the rarest ones (weight 1).
func keyWeight(key string) int {
	switch key {
	case "message_created":
		return 40
	case "user_login":
		return 25
	case "reaction_created", "message_updated":
		return 12
	case "user_logout", "user_2fa_success":
		return 6
	case "message_deleted", "reaction_deleted", "thread_created", "user_2fa_fail",
		"user_chat_join", "search_messages_api", "kms_encrypt", "kms_decrypt":
		return 3
	case "user_updated", "user_chat_leave", "video_call_started", "video_call_finished",
		"search_users_api", "search_chats_api":
		return 2
	}
	return 1
}

// ExtraEventKeys returns the n keys that Config.ExtraKeys adds.
func ExtraEventKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("unlisted_event_%04d", i+1)
	}
	return keys
}

// OddEventKeys returns the keys that Config.OddKeys adds: characters a
// file name, a partition or a label may trip over.
func OddEventKeys() []string {
	return []string{"a/b", "../../escape", ".", "..", "key.with.dots", "ключ_события 🚀", "nul\x00byte", "back\\slash", strings.Repeat("long_key_", 34)}
}

// OddIDs returns the ids that Config.OddKeys gives some events instead of a UUID.
func OddIDs() []string {
	return []string{"../../id", "id/with/slash", "id.with.dots", "идентификатор-🚀", strings.Repeat("0123456789", 30)}
}

// HostileTexts returns the texts that Config.HostileText puts among the
// tags' and chats' names and the user agents: what a member or a client
// may send, aimed at what shows it (an HTML page, a terminal, a chat
// message read as markdown).
func HostileTexts() []string {
	return []string{
		`<script>window.__ran='script'</script>`,
		`"><img src=x onerror="window.__ran='img'">`,
		`</script><script>window.__ran='close'</script>`,
		"javascript:alert(1)",
		"evil\u202egnp.exe",
		"red\x1b[31mRED\x1b[0m\x1b]0;title\x07",
		"\x1b[2K\rOK  forged line",
		"line1\r\nINFO forged line",
		"@all *bold* [link](https://evil.example)",
	}
}
