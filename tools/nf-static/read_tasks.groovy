// Read task files the way Nextflow's splitJson does (nextflow.splitter.JsonSplitter: gson's streaming reader,
// each element of the top-level array one item; numbers typed by the same rules) and print what Groovy got,
// as JSON, one line per file: {"file": ..., "rows": [...], "types": [...leaf type names...]}.
// Usage: java -cp language-server-all.jar groovy.ui.GroovyMain read_tasks.groovy FILE.json...
import com.google.gson.stream.JsonReader
import com.google.gson.stream.JsonToken
import groovy.json.JsonOutput

def fromJson
fromJson = { JsonReader reader ->
    switch (reader.peek()) {
        case JsonToken.NULL: reader.nextNull(); return null
        case JsonToken.STRING: return reader.nextString()
        case JsonToken.BOOLEAN: return reader.nextBoolean()
        case JsonToken.NUMBER:
            def str = reader.nextString()
            if (str ==~ /\d+(\.\d+)?/ && str.isInteger()) return str.toInteger()
            if (str ==~ /\d+(\.\d+)?/ && str.isLong()) return str.toLong()
            if (str ==~ /\d+(\.\d+)?/ && str.isDouble()) return str.toDouble()
            return str
        case JsonToken.BEGIN_ARRAY:
            def array = []; reader.beginArray()
            while (reader.peek() != JsonToken.END_ARRAY) array.add(fromJson(reader))
            reader.endArray(); return array
        case JsonToken.BEGIN_OBJECT:
            def object = [:]; reader.beginObject()
            while (reader.peek() != JsonToken.END_OBJECT) { def k = reader.nextName(); object[k] = fromJson(reader) }
            reader.endObject(); return object
        default: throw new IllegalStateException("Unexpected JSON token")
    }
}
def leafTypes
leafTypes = { v -> v instanceof Map ? v.values().collectMany { x -> leafTypes(x) } : v instanceof List ? v.collectMany { x -> leafTypes(x) } : [v == null ? 'null' : v.getClass().simpleName] }
args.each { f ->
    def reader = new JsonReader(new FileReader(f))
    def rows = []
    reader.beginArray()   // splitJson emits each element of the top-level array
    while (reader.hasNext()) rows << fromJson(reader)
    reader.endArray()
    println JsonOutput.toJson([file: f, rows: rows, types: (leafTypes(rows) as Set).sort()])
}
