// Run by ../../check-jar with only the sixcast JAR and its runtime dependencies on the class
// path: checks that the JAR carries libsixcast_ffi for this platform where JNA looks for it, and
// that a call into the library gives the group address of the shared vectors.
// Usage: java -cp JAR:DEPENDENCIES JarCheck.java NAME PROFILE SCOPE EXPECTED-ADDRESS

import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import dev.sixcast.Sixcast_ffiKt;
import java.net.InetAddress;
import java.net.URL;

public class JarCheck {
    public static void main(String[] args) throws Exception {
        ClassLoader loader = Sixcast_ffiKt.class.getClassLoader();
        String resource = Platform.RESOURCE_PREFIX + "/" + System.mapLibraryName("sixcast_ffi");
        URL url = loader.getResource(resource);
        // From the JAR itself: a target/classes folder on the class path would prove nothing.
        if (url == null || !url.getProtocol().equals("jar")) {
            System.err.println("check-jar: the JAR does not carry " + resource + " (found: " + url + ")");
            System.exit(1);
        }
        String address = Sixcast_ffiKt.groupAddress(args[0], args[1], args[2], null);
        // RFC 5952 text may differ in form: compare the parsed addresses (literals: no lookup).
        if (!InetAddress.getByName(address).equals(InetAddress.getByName(args[3]))) {
            System.err.println("check-jar: group of " + args[0] + " is " + address + ", expected " + args[3]);
            System.exit(1);
        }
        String loaded = NativeLibrary.getInstance("sixcast_ffi", loader).getFile().getPath();
        System.out.println("check-jar: " + resource + " from the JAR (loaded as " + loaded + "): "
                + args[0] + " -> " + address);
    }
}
