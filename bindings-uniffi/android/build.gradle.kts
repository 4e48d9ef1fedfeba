// The Android library (AAR) of sixcast: the Kotlin source UniFFI generates
// (../kotlin/target/generated-sources/uniffi), the Kotlin idioms beside it (../kotlin/src/main),
// and libsixcast_ffi for each ABI, which cargo-ndk writes into build/jniLibs. build-aar.sh
// makes all three and runs this build.
plugins {
    // 8.13.2: its R8 reads the output of Kotlin 2.3, the version ../kotlin/pom.xml uses too.
    id("com.android.library") version "8.13.2"
    id("org.jetbrains.kotlin.android") version "2.3.21"
}

android {
    namespace = "dev.sixcast"
    compileSdk = 35

    defaultConfig {
        // The core lists interfaces with getifaddrs, which Android has from API 24.
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        java.srcDirs("../kotlin/target/generated-sources/uniffi", "../kotlin/src/main/kotlin")
        jniLibs.srcDir("build/jniLibs")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // JNA's AAR: its JAR carries libjnidispatch for desktop systems only. Applications that use
    // the sixcast AAR as a file add these two themselves (a file brings no dependencies).
    implementation("net.java.dev.jna:jna:5.18.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
}
