package transform

// eventKeys is the AuditEventKey enum of the OpenAPI document, in enum order.
// Category must name a group other than "other" for each of them; the tests
// hold the two together.
var eventKeys = [...]string{
	"user_login",
	"user_logout",
	"user_2fa_fail",
	"user_2fa_success",
	"user_created",
	"user_deleted",
	"user_role_changed",
	"user_updated",
	"tag_created",
	"tag_deleted",
	"user_added_to_tag",
	"user_removed_from_tag",
	"chat_created",
	"chat_renamed",
	"chat_permission_changed",
	"user_chat_join",
	"user_chat_leave",
	"tag_added_to_chat",
	"tag_removed_from_chat",
	"message_updated",
	"message_deleted",
	"message_created",
	"reaction_created",
	"reaction_deleted",
	"thread_created",
	"access_token_created",
	"access_token_updated",
	"access_token_destroy",
	"kms_encrypt",
	"kms_decrypt",
	"audit_events_accessed",
	"dlp_violation_detected",
	"search_users_api",
	"search_chats_api",
	"search_messages_api",
	"bot_scopes_updated",
	"bot_webhook_settings_updated",
	"bot_token_recreated",
	"bot_deleted",
	"bot_oauth_client_updated",
	"oauth_authorization_granted",
	"oauth_authorization_revoked",
	"video_call_started",
	"video_call_finished",
	"video_call_recording_ready",
}

// EventKeys returns the 45 event keys of the API's AuditEventKey enum in enum
// order, as a fresh slice the caller may modify.
func EventKeys() []string {
	out := eventKeys
	return out[:]
}

// CategoryOther is the event_category of every event key not in EventKeys.
const CategoryOther = "other"

// Category returns the event_category of an event key (SPEC §5), grouped as
// Pachca's guide for security teams does; an unknown key gives CategoryOther.
func Category(key string) string {
	switch key {
	case "user_login", "user_logout", "user_2fa_fail", "user_2fa_success":
		return "auth"
	case "user_created", "user_deleted", "user_role_changed", "user_updated":
		return "employees"
	case "tag_created", "tag_deleted", "user_added_to_tag", "user_removed_from_tag":
		return "tags"
	case "chat_created", "chat_renamed", "chat_permission_changed":
		return "chats"
	case "user_chat_join", "user_chat_leave", "tag_added_to_chat", "tag_removed_from_chat":
		return "chat_members"
	case "message_created", "message_updated", "message_deleted":
		return "messages"
	case "reaction_created", "reaction_deleted", "thread_created":
		return "reactions_threads"
	case "access_token_created", "access_token_updated", "access_token_destroy":
		return "tokens"
	case "kms_encrypt", "kms_decrypt":
		return "encryption"
	case "audit_events_accessed", "dlp_violation_detected":
		return "security"
	case "search_users_api", "search_chats_api", "search_messages_api":
		return "search"
	case "bot_scopes_updated", "bot_webhook_settings_updated", "bot_token_recreated",
		"bot_deleted", "bot_oauth_client_updated":
		return "bots"
	case "oauth_authorization_granted", "oauth_authorization_revoked":
		return "oauth"
	case "video_call_started", "video_call_finished", "video_call_recording_ready":
		return "video_calls"
	}
	return CategoryOther
}
