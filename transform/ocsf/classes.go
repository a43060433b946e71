package ocsf

import "slices"

// Class is one OCSF event class that Map produces.
type Class struct {
	UID          int32
	Name         string // the schema's name, e.g. "authentication"
	Caption      string // e.g. "Authentication"
	CategoryUID  int32
	CategoryName string
	// Profiles go into metadata.profiles: datetime (time_dt) always, host
	// where the class has actor only through that profile.
	Profiles []string
	// Attributes are the top-level attributes an event of the class may
	// have, in Event field order; every other Event field stays zero. The
	// Parquet encoder declares exactly these columns for a one-class file.
	Attributes []string

	activities map[int32]string // activity_id -> caption, 0 and 99 included
	statuses   map[int32]string // status_id -> caption
}

// Class UIDs of the classes Map produces.
const (
	ClassBaseEvent           int32 = 0
	ClassDataSecurityFinding int32 = 2006
	ClassAccountChange       int32 = 3001
	ClassAuthentication      int32 = 3002
	ClassEntityManagement    int32 = 3004
	ClassUserAccess          int32 = 3005
	ClassGroupManagement     int32 = 3006
	ClassWebResources        int32 = 6001
	ClassAPIActivity         int32 = 6003
)

// common are the attributes of every event Map writes.
var common = []string{
	"activity_id", "activity_name", "category_uid", "category_name", "class_uid", "class_name",
	"type_uid", "type_name", "severity_id", "severity", "status_id", "status", "message",
	"time", "time_dt", "metadata",
}

func attrs(extra ...string) []string {
	out := append(slices.Clone(common), extra...)
	return append(out, "unmapped")
}

var (
	statusCaptions  = map[int32]string{0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
	findingStatuses = map[int32]string{0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 99: "Other"}
	crud            = map[int32]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
)

// classTable lists the classes in class_uid order; ClassByUID looks them up.
var classTable = [...]Class{
	{UID: ClassBaseEvent, Name: "base_event", Caption: "Base Event", CategoryUID: 0, CategoryName: "Uncategorized",
		Profiles: []string{"datetime"}, Attributes: attrs(),
		activities: map[int32]string{0: "Unknown", 99: "Other"}, statuses: statusCaptions},
	{UID: ClassDataSecurityFinding, Name: "data_security_finding", Caption: "Data Security Finding",
		CategoryUID: 2, CategoryName: "Findings", Profiles: []string{"datetime", "host"},
		Attributes: attrs("actor", "resources", "finding_info", "data_security", "src_endpoint"),
		activities: map[int32]string{0: "Unknown", 1: "Create", 2: "Update", 3: "Close", 4: "Suppressed", 99: "Other"},
		statuses:   findingStatuses},
	{UID: ClassAccountChange, Name: "account_change", Caption: "Account Change",
		CategoryUID: 3, CategoryName: "Identity & Access Management", Profiles: []string{"datetime"},
		Attributes: attrs("actor", "user", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset",
			5: "Disable", 6: "Delete", 7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable",
			11: "MFA Factor Disable", 99: "Other"},
		statuses: statusCaptions},
	{UID: ClassAuthentication, Name: "authentication", Caption: "Authentication",
		CategoryUID: 3, CategoryName: "Identity & Access Management", Profiles: []string{"datetime"},
		Attributes: attrs("actor", "user", "service", "is_mfa", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Logon", 2: "Logoff", 3: "Authentication Ticket",
			4: "Service Ticket Request", 5: "Service Ticket Renew", 6: "Preauth", 99: "Other"},
		statuses: statusCaptions},
	{UID: ClassEntityManagement, Name: "entity_management", Caption: "Entity Management",
		CategoryUID: 3, CategoryName: "Identity & Access Management", Profiles: []string{"datetime", "host"},
		Attributes: attrs("actor", "entity", "entity_result", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move",
			6: "Enroll", 7: "Unenroll", 8: "Enable", 9: "Disable", 10: "Activate", 11: "Deactivate", 12: "Suspend",
			13: "Resume", 99: "Other"},
		statuses: statusCaptions},
	{UID: ClassUserAccess, Name: "user_access", Caption: "User Access Management",
		CategoryUID: 3, CategoryName: "Identity & Access Management", Profiles: []string{"datetime", "host"},
		Attributes: attrs("actor", "user", "privileges", "resource", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Assign Privileges", 2: "Revoke Privileges", 99: "Other"},
		statuses:   statusCaptions},
	{UID: ClassGroupManagement, Name: "group_management", Caption: "Group Management",
		CategoryUID: 3, CategoryName: "Identity & Access Management", Profiles: []string{"datetime", "host"},
		Attributes: attrs("actor", "user", "privileges", "group", "resource", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Assign Privileges", 2: "Revoke Privileges", 3: "Add User",
			4: "Remove User", 5: "Delete", 6: "Create", 99: "Other"},
		statuses: statusCaptions},
	{UID: ClassWebResources, Name: "web_resources_activity", Caption: "Web Resources Activity",
		CategoryUID: 6, CategoryName: "Application Activity", Profiles: []string{"datetime", "host"},
		Attributes: attrs("start_time", "end_time", "duration", "actor", "web_resources", "src_endpoint", "http_request"),
		activities: map[int32]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Search",
			6: "Import", 7: "Export", 8: "Share", 99: "Other"},
		statuses: statusCaptions},
	{UID: ClassAPIActivity, Name: "api_activity", Caption: "API Activity",
		CategoryUID: 6, CategoryName: "Application Activity", Profiles: []string{"datetime"},
		Attributes: attrs("actor", "api", "resources", "src_endpoint", "http_request"),
		activities: crud, statuses: statusCaptions},
}

// classRef returns the table entry of uid, or nil.
func classRef(uid int32) *Class {
	for i := range classTable {
		if classTable[i].UID == uid {
			return &classTable[i]
		}
	}
	return nil
}

// ClassByUID returns the class of a class_uid that Map produces.
func ClassByUID(uid int32) (Class, bool) {
	c := classRef(uid)
	if c == nil {
		return Class{}, false
	}
	return c.clone(), true
}

// Classes returns every class Map produces, in class_uid order, as copies
// the caller may modify.
func Classes() []Class {
	out := make([]Class, len(classTable))
	for i := range classTable {
		out[i] = classTable[i].clone()
	}
	return out
}

func (c *Class) clone() Class {
	out := *c
	out.Profiles = slices.Clone(c.Profiles)
	out.Attributes = slices.Clone(c.Attributes)
	return out
}

// ActivityCaption is the caption of an activity_id of the class ("" if the
// class has no such activity).
func (c Class) ActivityCaption(id int32) string { return c.activities[id] }

var severities = map[int32]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High",
	5: "Critical", 6: "Fatal", 99: "Other"}

// Severity levels Map uses.
const (
	sevUnknown int32 = 0
	sevInfo    int32 = 1
	sevLow     int32 = 2
	sevMedium  int32 = 3
)

// Status values Map uses (status_id; for findings 1 is New).
const (
	statusUnknown int32 = 0
	statusSuccess int32 = 1
	statusFailure int32 = 2
	findingNew    int32 = 1
)

// ClassOf returns the class_uid that Map gives an event key (ClassBaseEvent
// for a key it does not know), without mapping a record: the split key of
// the one-class-per-file layouts.
func ClassOf(eventKey string) int32 {
	s, _ := specOf(eventKey)
	return s.class
}
