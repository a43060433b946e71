package simulator

// Random draws of the workspace's objects.
func (g *gen) user() uint64 { return firstUser + g.rng.Uint64N(uint64(g.users)) }
func (g *gen) bot() uint64  { return firstBot + g.rng.Uint64N(bots) }
func (g *gen) chat() uint64 { return firstChat + g.rng.Uint64N(2000) }
func (g *gen) tag() uint64  { return firstTag + g.rng.Uint64N(uint64(len(g.v.tagNames))) }
func (g *gen) msg() uint64  { return firstMsg + g.rng.Uint64N(50_000_000) }
func (g *gen) chance(pct int) bool {
	return g.rng.IntN(100) < pct
}
func (g *gen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// some returns a random subset of s in s's order, possibly empty when
// allowEmpty.
func (g *gen) some(s []string, allowEmpty bool) []string {
	for {
		out := make([]string, 0, len(s))
		for _, v := range s {
			if g.chance(25) {
				out = append(out, v)
			}
		}
		if len(out) > 0 || allowEmpty {
			return out
		}
	}
}

// draft makes the event of one key: who did it, to what, and the details
// variant of the API reference for that key.
func (g *gen) draft(key string) draft { return g.draftBy(key, g.user()) }

// draftBy is draft with the acting user given: the events of the user
// themself (user_login) name actor as their entity too, and the details
// that name who acted (initiator_id) name actor.
func (g *gen) draftBy(key string, actor uint64) draft {
	d := draft{key: key, actorID: actor, actorType: "User", entityID: actor, entityType: "User"}
	o := newObj(g.buf[:0])
	switch key {
	case "user_login", "user_logout":
	case "user_2fa_fail", "user_2fa_success":
		if g.cfg.UnknownKeys && g.chance(10) {
			o.str("mfa_method", g.pick([]string{"totp", "sms", "webauthn"})) // a field no spec lists yet
		}
	case "user_created", "user_deleted":
		d.actorID, d.entityID = g.cfg.owner(), g.user()
	case "user_role_changed":
		d.entityID = g.user()
		o.str("new_company_role", g.pick(g.v.roles)).str("previous_company_role", g.pick(g.v.roles)).uint("initiator_id", actor)
	case "user_updated":
		if g.chance(20) {
			o.strs("changed_attrs", g.some(g.v.userAttrs[:4], false)).str("context", "sso_login")
		} else {
			d.entityID = g.user()
			o.strs("changed_attrs", g.some(g.v.userAttrs, true))
		}
	case "tag_created", "tag_deleted":
		d.entityID, d.entityType = g.tag(), "GroupTag"
		o.str("name", g.pick(g.v.tagNames))
	case "user_added_to_tag", "user_removed_from_tag":
		d.entityID = g.user()
		o.uint("initiator_id", actor)
	case "chat_created":
		d.entityID, d.entityType = g.chat(), "Chat"
	case "chat_renamed":
		d.entityID, d.entityType = g.chat(), "Chat"
		o.str("old_name", g.pick(g.v.chatNames)).str("new_name", g.pick(g.v.chatNames))
	case "chat_permission_changed":
		d.entityID, d.entityType = g.chat(), "Chat"
		o.bool("public_access", g.chance(50))
	case "user_chat_join":
		d.entityID, d.entityType = g.chat(), "Chat"
		o.uint("inviter_id", g.user())
	case "user_chat_leave":
		d.entityID, d.entityType = g.chat(), "Chat"
		o.uint("initiator_id", g.user())
	case "tag_added_to_chat":
		d.entityID, d.entityType = g.tag(), "GroupTag"
		o.uint("chat_id", g.chat()).str("tag_name", g.pick(g.v.tagNames))
	case "tag_removed_from_chat":
		d.entityID, d.entityType = g.tag(), "GroupTag"
		o.uint("chat_id", g.chat())
	case "message_created", "message_updated", "message_deleted", "reaction_created", "reaction_deleted":
		d.entityID, d.entityType = g.msg(), "Message"
		if key == "message_created" && g.chance(10) {
			d.actorID, d.actorType = g.bot(), "Bot"
		}
	case "thread_created":
		d.entityID, d.entityType = 260001+g.rng.Uint64N(100_000), "Thread"
	case "access_token_created", "access_token_updated", "access_token_destroy":
		d.entityID, d.entityType = 70001+g.rng.Uint64N(5000), "AccessToken"
		o.strs("scopes", g.some(g.v.scopes, key != "access_token_created"))
	case "kms_encrypt", "kms_decrypt":
		d.serverSide = true
		msg := g.msg()
		if g.chance(5) {
			msg = bigID + g.rng.Uint64N(1<<20) // identifiers do exceed 2^53
		}
		d.entityID, d.entityType = msg, "Message"
		o.uint("chat_id", g.chat()).uint("message_id", msg).str("reason", g.pick(g.v.kmsReasons))
	case "audit_events_accessed":
		d.actorID, d.entityID = g.cfg.owner(), g.cfg.owner()
	case "dlp_violation_detected":
		d.serverSide = true
		msg := g.msg()
		d.entityID, d.entityType = msg, "Message"
		o.uint("dlp_rule_id", 1+g.rng.Uint64N(40)).str("dlp_rule_name", g.pick(g.v.dlpRules)).
			uint("message_id", msg).uint("chat_id", g.chat()).uint("user_id", actor).
			nullStr("action_message", g.pick(g.v.dlpActions), g.chance(70)).bool("conditions_matched", g.chance(85))
		if g.cfg.UnknownKeys && g.chance(20) {
			o.int("risk_score", int64(g.rng.IntN(100))) // a field no spec lists yet
		}
	case "search_users_api", "search_chats_api", "search_messages_api":
		if g.chance(30) {
			d.actorID, d.actorType = g.bot(), "Bot"
			d.entityID, d.entityType = d.actorID, "Bot"
		}
		g.search(o, key)
	case "bot_scopes_updated":
		d.entityID, d.entityType = g.bot(), "Bot"
		o.strs("added_scopes", g.some(g.v.scopes, true)).strs("removed_scopes", g.some(g.v.scopes, true))
	case "bot_webhook_settings_updated":
		d.entityID, d.entityType = g.bot(), "Bot"
		ch := newObj(nil)
		if g.chance(70) {
			ch.raw("outgoing_url", newObj(nil).str("previous", "https://hooks.example.com/pachca/1").str("new", "https://hooks.example.com/pachca/2").close())
		}
		ch.raw("ignore_self_messages", newObj(nil).bool("previous", false).bool("new", true).close())
		if g.chance(30) {
			ch.raw("events_history_enabled", newObj(nil).bool("previous", true).bool("new", false).close())
		}
		o.raw("changes", ch.close())
	case "bot_token_recreated", "bot_deleted":
		bot := g.bot()
		d.entityID, d.entityType = bot, "Bot"
		o.uint("bot_id", bot).nullUint("actor_id", actor, g.chance(80))
	case "bot_oauth_client_updated":
		d.entityID, d.entityType = g.bot(), "Bot"
		ch := newObj(nil)
		ch.raw("redirect_uris", newObj(nil).strs("previous", g.v.redirectURIs[:1]).strs("new", g.v.redirectURIs[:1+g.rng.IntN(3)]).close())
		if g.chance(40) {
			ch.raw("confidential", newObj(nil).bool("previous", true).bool("new", false).close())
		}
		if g.chance(40) {
			ch.raw("scopes", newObj(nil).strs("previous", g.v.scopes[:2]).strs("new", g.v.scopes[:3]).close())
		}
		o.str("client_id", g.pick(g.v.clientIDs)).raw("changes", ch.close())
	case "oauth_authorization_granted":
		o.str("client_id", g.pick(g.v.clientIDs)).strs("scopes", g.some(g.v.scopes, false))
	case "oauth_authorization_revoked":
		o.str("client_id", g.pick(g.v.clientIDs)).int("revoked_tokens_count", int64(g.rng.IntN(4)))
	case "video_call_started", "video_call_finished", "video_call_recording_ready":
		chat := g.chat()
		d.entityID, d.entityType = chat, "Chat"
		o.uint("chat_id", chat).nullUint("started_message_id", g.msg(), g.chance(80))
		switch key {
		case "video_call_finished":
			o.int("duration", int64(g.rng.IntN(7200))).int("max_members_count", int64(1+g.rng.IntN(60)))
		case "video_call_recording_ready":
			d.serverSide = true
			dur := int64(10 + g.rng.IntN(7200))
			o.uint("recording_id", 40001+g.rng.Uint64N(10_000)).uint("file_id", 8_000_001+g.rng.Uint64N(1_000_000)).
				int("duration", dur).int("size", dur*(200_000+int64(g.rng.IntN(1_000_000))))
		}
	case "user_passkey_registered": // keys no spec lists yet
		o.uint("passkey_id", 1+g.rng.Uint64N(10_000)).str("authenticator", g.pick([]string{"iCloud Keychain", "YubiKey 5", "Windows Hello"}))
	case "workspace_export_requested":
		d.actorID, d.entityID, d.entityType = g.cfg.owner(), 1+g.rng.Uint64N(500), "Export"
		o.uint("export_id", d.entityID).str("scope", "full").bool("include_files", g.chance(50))
	}
	d.details = o.close()
	g.buf = d.details
	return d
}

// search writes an AuditDetailsSearch object with the filters its type takes.
func (g *gen) search(o *obj, key string) {
	f := newObj(nil)
	var typ string
	switch key {
	case "search_users_api":
		typ = "users"
		if g.chance(60) {
			f.strs("company_roles", g.some(g.v.roles, false))
		}
		if g.chance(30) {
			f.str("created_from", "2025-05-12T00:00:00.000Z").str("created_to", "2026-01-01T00:00:00.000Z")
		}
	case "search_chats_api":
		typ = "chats"
		if g.chance(50) {
			f.bool("active", g.chance(80)).str("chat_subtype", g.pick([]string{"discussion", "thread"}))
		}
		if g.chance(30) {
			f.bool("personal", false)
		}
	default:
		typ = "messages"
		if g.chance(50) {
			f.uints("chat_ids", []uint64{g.chat(), g.chat()})
		}
		if g.chance(30) {
			f.uints("user_ids", []uint64{g.user()})
		}
	}
	if g.chance(40) {
		f.str("order", g.pick([]string{"asc", "desc"})).str("sort", "id")
	}
	o.str("search_type", typ).bool("query_present", g.chance(80)).bool("cursor_present", g.chance(20)).
		int("limit", int64(1+g.rng.IntN(100))).raw("filters", f.close())
}
