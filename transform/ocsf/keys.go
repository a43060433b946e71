package ocsf

// keySpec is how one event key maps: its class and activity, the fixed
// severity and status, the message (the key's description in the OpenAPI
// document) and the class-specific part of the event.
type keySpec struct {
	class    int32
	activity int32
	name     string // activity_name when activity is 99 (Other)
	severity int32
	status   int32
	message  string
	build    func(m *mapper)
}

// specOf returns the mapping of an event key; ok is false for a key the
// mapping does not know, which goes to the fallback class (Base Event).
// README "OCSF 1.3 output" has the table with the reasons.
func specOf(key string) (keySpec, bool) {
	s := keySpec{severity: sevInfo, status: statusSuccess}
	switch key {
	// Authentication: sign-in and its second factor.
	case "user_login":
		s.class, s.activity, s.build = ClassAuthentication, 1, authentication(false)
	case "user_logout":
		s.class, s.activity, s.build = ClassAuthentication, 2, authentication(false)
	case "user_2fa_success":
		s.class, s.activity, s.build = ClassAuthentication, 1, authentication(true)
	case "user_2fa_fail":
		s.class, s.activity, s.build = ClassAuthentication, 1, authentication(true)
		s.severity, s.status = sevLow, statusFailure

	// Account Change: the user account's life cycle.
	case "user_created":
		s.class, s.activity, s.build = ClassAccountChange, 1, accountChange
	case "user_deleted":
		s.class, s.activity, s.build = ClassAccountChange, 6, accountChange
	case "user_updated":
		s.class, s.activity, s.name, s.build = ClassAccountChange, 99, "Update", accountChange

	// User Access Management: what a user may do.
	case "user_role_changed":
		s.class, s.activity, s.build, s.severity = ClassUserAccess, 1, roleChanged, sevLow
	case "oauth_authorization_granted":
		s.class, s.activity, s.build, s.severity = ClassUserAccess, 1, oauthGranted, sevLow
	case "oauth_authorization_revoked":
		s.class, s.activity, s.build = ClassUserAccess, 2, oauthRevoked

	// Group Management: membership of tags and chats.
	case "user_added_to_tag":
		s.class, s.activity, s.build = ClassGroupManagement, 3, membership(typeTag)
	case "user_removed_from_tag":
		s.class, s.activity, s.build = ClassGroupManagement, 4, membership(typeTag)
	case "user_chat_join":
		s.class, s.activity, s.build = ClassGroupManagement, 3, membership(typeChat)
	case "user_chat_leave":
		s.class, s.activity, s.build = ClassGroupManagement, 4, membership(typeChat)
	case "tag_added_to_chat":
		s.class, s.activity, s.build = ClassGroupManagement, 1, tagChat
	case "tag_removed_from_chat":
		s.class, s.activity, s.build = ClassGroupManagement, 2, tagChat

	// Entity Management: chats, tags, tokens and bots as managed objects.
	case "tag_created", "chat_created", "access_token_created":
		s.class, s.activity, s.build = ClassEntityManagement, 1, entity
	case "chat_renamed", "chat_permission_changed", "access_token_updated", "bot_webhook_settings_updated",
		"bot_token_recreated", "bot_oauth_client_updated":
		s.class, s.activity, s.build = ClassEntityManagement, 3, entity
	case "bot_scopes_updated":
		s.class, s.activity, s.build, s.severity = ClassEntityManagement, 3, entity, sevLow
	case "tag_deleted", "access_token_destroy", "bot_deleted":
		s.class, s.activity, s.build = ClassEntityManagement, 4, entity

	// Web Resources Activity: the content of chats.
	case "message_created", "thread_created":
		s.class, s.activity, s.build = ClassWebResources, 1, webResources
	case "message_updated", "reaction_created", "reaction_deleted":
		s.class, s.activity, s.build = ClassWebResources, 3, webResources
	case "message_deleted":
		s.class, s.activity, s.build = ClassWebResources, 4, webResources
	case "kms_encrypt":
		s.class, s.activity, s.name, s.build = ClassWebResources, 99, "Encrypt", webResources
	case "kms_decrypt":
		s.class, s.activity, s.name, s.build = ClassWebResources, 99, "Decrypt", webResources
	case "video_call_started", "video_call_recording_ready":
		s.class, s.activity, s.build = ClassWebResources, 1, webResources
	case "video_call_finished":
		s.class, s.activity, s.name, s.build = ClassWebResources, 99, "End", videoCallFinished

	// API Activity: reads through the public API.
	case "search_users_api", "search_chats_api", "search_messages_api", "audit_events_accessed":
		s.class, s.activity, s.build = ClassAPIActivity, 2, apiActivity

	// Data Security Finding: DLP.
	case "dlp_violation_detected":
		s.class, s.activity, s.build = ClassDataSecurityFinding, 1, dlpFinding
		s.severity, s.status = sevMedium, findingNew
	default:
		return keySpec{class: ClassBaseEvent, activity: 99, name: key, severity: sevUnknown, status: statusUnknown}, false
	}
	s.message = description(key)
	return s, true
}

// description is the key's x-enum-descriptions entry of the OpenAPI
// document (TestDescriptionsMatchOpenAPI holds the two together).
func description(key string) string {
	switch key {
	case "user_login":
		return "User logged in successfully"
	case "user_logout":
		return "User logged out"
	case "user_2fa_fail":
		return "Failed two-factor authentication attempt"
	case "user_2fa_success":
		return "Successful two-factor authentication"
	case "user_created":
		return "New user account created"
	case "user_deleted":
		return "User account deleted"
	case "user_role_changed":
		return "User role changed"
	case "user_updated":
		return "User data updated"
	case "tag_created":
		return "New tag created"
	case "tag_deleted":
		return "Tag deleted"
	case "user_added_to_tag":
		return "User added to tag"
	case "user_removed_from_tag":
		return "User removed from tag"
	case "chat_created":
		return "New chat created"
	case "chat_renamed":
		return "Chat renamed"
	case "chat_permission_changed":
		return "Chat access permissions changed"
	case "user_chat_join":
		return "User joined the chat"
	case "user_chat_leave":
		return "User left the chat"
	case "tag_added_to_chat":
		return "Tag added to chat"
	case "tag_removed_from_chat":
		return "Tag removed from chat"
	case "message_updated":
		return "Message edited"
	case "message_deleted":
		return "Message deleted"
	case "message_created":
		return "Message created"
	case "reaction_created":
		return "Reaction added"
	case "reaction_deleted":
		return "Reaction removed"
	case "thread_created":
		return "Thread created"
	case "access_token_created":
		return "New access token created"
	case "access_token_updated":
		return "Access token updated"
	case "access_token_destroy":
		return "Access token deleted"
	case "kms_encrypt":
		return "Data encrypted"
	case "kms_decrypt":
		return "Data decrypted"
	case "audit_events_accessed":
		return "Audit logs accessed"
	case "dlp_violation_detected":
		return "DLP rule violation detected"
	case "search_users_api":
		return "Employee search via API"
	case "search_chats_api":
		return "Chat search via API"
	case "search_messages_api":
		return "Message search via API"
	case "bot_scopes_updated":
		return "Bot token scopes changed"
	case "bot_webhook_settings_updated":
		return "Bot outgoing webhook settings changed"
	case "bot_token_recreated":
		return "Bot token recreated (rotation)"
	case "bot_deleted":
		return "Bot deleted"
	case "bot_oauth_client_updated":
		return "Bot OAuth client settings changed"
	case "oauth_authorization_granted":
		return "User granted an OAuth client access to their data"
	case "oauth_authorization_revoked":
		return "An OAuth client's access to user data was revoked"
	case "video_call_started":
		return "Video call started"
	case "video_call_finished":
		return "Video call finished"
	case "video_call_recording_ready":
		return "Video call recording ready"
	}
	return ""
}

// apiOperation is the OpenAPI operationId and path of the API call an API
// Activity key records.
func apiOperation(key string) (operation, path string) {
	switch key {
	case "search_users_api":
		return "SearchOperations_searchUsers", "/api/shared/v1/search/users"
	case "search_chats_api":
		return "SearchOperations_searchChats", "/api/shared/v1/search/chats"
	case "search_messages_api":
		return "SearchOperations_searchMessages", "/api/shared/v1/search/messages"
	case "audit_events_accessed":
		return "SecurityOperations_getAuditEvents", "/api/shared/v1/audit_events"
	}
	return "", ""
}
