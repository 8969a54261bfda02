// Approximate `nextflow config -o json` offline with Groovy's ConfigSlurper: `includeConfig` files are
// inlined (paths relative to the including file, like Nextflow), memory/duration literals (`8.GB`, `4.h`)
// evaluate to strings, and profiles are not applied. Emits only the sections nf-core tooling reads.
// Usage: java -cp language-server-all.jar groovy.ui.GroovyMain config_json.groovy nextflow.config
import groovy.json.JsonOutput

// Nextflow adds these unit properties to numbers; ConfigSlurper does not know them.
['B', 'KB', 'MB', 'GB', 'TB', 'ms', 's', 'm', 'h', 'd', 'min', 'sec', 'hour', 'day'].each { u ->
    Number.metaClass."get${u}" = { -> "${delegate}.${u}".toString() }
}

// Date.format(String) comes from groovy-dateutil, which Nextflow ships and this jar does not (nf-core's
// trace_report_suffix uses it).
Date.metaClass.format = { String pattern -> new java.text.SimpleDateFormat(pattern).format(delegate) }

// includeConfig is a Nextflow extension: inline the included text (recursively) before parsing.
def INCLUDE = ~/(?m)^(\s*)includeConfig\s+(['"])([^'"]+)\2\s*$/
def inline
inline = { File f, Set seen ->
    if (!f.isFile()) throw new FileNotFoundException("includeConfig: ${f} not found")
    if (!seen.add(f.canonicalPath)) throw new IllegalStateException("includeConfig cycle at ${f}")
    f.text.replaceAll(INCLUDE) { all, indent, q, rel ->
        def inc = new File(rel).isAbsolute() ? new File(rel) : new File(f.parentFile, rel)
        "${indent}// --- included from ${rel}\n" + inline(inc, seen) + "\n"
    }
}
def text = inline(new File(args[0]).canonicalFile, [] as Set)
// Two passes: the first, with a stand-in `params` whose every key is '1' (so `params.x as int` and "${params.x}"
// evaluate), only reads the params block; the second resolves `params.x` references against those values.
def parse = { Map binding -> def s = new ConfigSlurper(); s.setBinding([params: binding]); s.parse(text) }
def cfg = parse([:].withDefault { '1' })
cfg = parse(cfg.params.flatten().collectEntries { k, v -> [k, v] }.withDefault { '1' })
def out = [:]
['params', 'manifest', 'validation', 'plugins'].each { k -> if (cfg.containsKey(k)) out[k] = cfg[k] instanceof ConfigObject ? cfg[k].collectEntries { kk, vv -> [kk, vv instanceof ConfigObject ? vv.flatten() : vv] } : cfg[k] }
println JsonOutput.prettyPrint(JsonOutput.toJson(out))
