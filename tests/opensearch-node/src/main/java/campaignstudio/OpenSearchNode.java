package campaignstudio;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node with HTTP (Netty) and the k-NN plugin, loaded as classpath plugins,
 * for campaign-studio's tests. Usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT.
 * Only loopback, only for tests: no security plugin, single-node discovery.
 */
public final class OpenSearchNode {

    /** Node's plugin-taking constructor is protected (as the test framework's MockNode uses it). */
    static final class TestNode extends Node {
        TestNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    @SuppressWarnings("unchecked")
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "campaign-studio-test")
                .put("node.name", "campaign-studio-test-node")
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", args[1])
                .put("transport.port", args[2])
                .put("node.portsfile", true)
                // A test machine's disk may be fuller than production watermarks allow.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("indices.breaker.total.use_real_memory", false)
                .build();
        LogConfigurator.configureWithoutConfig(settings);
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, Collections.emptyMap(), null, () -> "campaign-studio-test-node");
        // Loaded by name: the plugin's jars come from its unpacked zip at run time.
        Class<? extends Plugin> knn =
                (Class<? extends Plugin>) Class.forName("org.opensearch.knn.plugin.KNNPlugin");
        Node node = new TestNode(env, List.of(Netty4Plugin.class, knn));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                System.err.println("closing the node: " + e);
            }
            stopped.countDown();
        }));
        node.start();
        System.out.println("node started");
        stopped.await();
    }
}
