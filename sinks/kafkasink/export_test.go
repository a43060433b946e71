package kafkasink

import "github.com/pachca-export/pachca-export/transform"

// MessageSize is the size the sink gives r's message against batch_bytes.
func MessageSize(r transform.Record) int {
	msgs, _ := buildMessages([]transform.Record{r})
	return messageSize(msgs[0])
}
